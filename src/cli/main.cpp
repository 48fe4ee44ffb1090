// anetrain: one binary, one subcommand per file in src/cli/.
#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "core/terminal_text.h"
#include "core/threads.h"

int main(int argc, char** argv) {
  anetrain::ensure_thread_spin_policy(argv);
  CLI::App app{"anetrain — train and run Llama/Qwen3-family transformers from scratch"};
  anetrain::Command run;
  anetrain::add_all_commands(app, run);
  // CLI11 reads an unknown first word as a stray positional ("A subcommand is required", or the
  // top-level help with exit 0 under --help); name it instead.
  if (argc > 1 && argv[1][0] != '-') {
    std::string names;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known |= sub->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "anetrain: error: unknown command '%s' (commands: %s; see anetrain --help)\n",
                   anetrain::terminal_safe(argv[1]).c_str(), names.c_str());
      return 2;
    }
  }
  try {
    app.parse(anetrain::set_aside_trainer_words(argc, argv), argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version: our own text
    // CLI11's message quotes the offending argument: escaped, like every other error message.
    std::fprintf(stderr, "%s\nRun with --help for more information.\n", anetrain::terminal_safe(e.what()).c_str());
    return e.get_exit_code();
  }
  try {
    return run();
  } catch (const anetrain::Error& e) {
    std::fprintf(stderr, "anetrain: error: %s\n", anetrain::terminal_safe(e.what()).c_str());  // quotes file names
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "anetrain: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "anetrain: internal error: %s\n", anetrain::terminal_safe(e.what()).c_str());
    return 2;
  }
}
