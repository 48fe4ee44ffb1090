// `anetrain dashboard RUN...`: the runs on a local web page (telemetry/dashboard_server.h), served
// until Ctrl-C. `--tui RUN`: a run in the terminal with its keys (cli/dashboard_tui.h);
// `--tui --train ARGS`: the same over a trainer it starts.
#include <memory>
#include <poll.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/dashboard_tui.h"
#include "core/error.h"
#include "core/terminal_text.h"
#include "telemetry/dashboard_server.h"
#include "telemetry/run_watch.h"

namespace anetrain {

namespace {

// The words after `dashboard ... --train`, as main set them aside before CLI11 parsed the rest
// (set_aside_trainer_words); unset where the parse saw them all (fuzz_cli).
std::optional<std::vector<std::string>> g_trainer_words;

volatile std::sig_atomic_t g_quit = 0;
void on_quit(int) { g_quit = 1; }

int run_web(const DashboardOptions& o) {
  for (const auto& r : o.runs)
    if (!std::filesystem::exists(telemetry_file(r)))
      std::fprintf(stderr, "dashboard: %s: no telemetry.jsonl yet; the page shows the run when it appears\n",
                   terminal_safe(r).c_str());
  // Before the banner: whoever reads "Ctrl-C stops" may send it at once.
  struct sigaction sa {};
  sa.sa_handler = on_quit;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  DashboardServer server(o);
  server.start();
  std::fputs(server.banner("Ctrl-C stops").c_str(), stdout);
  std::fflush(stdout);
  while (!g_quit) ::poll(nullptr, 0, 500);
  server.stop();
  return 0;
}

}  // namespace

int set_aside_trainer_words(int argc, char** argv) {
  g_trainer_words.reset();
  if (argc < 2 || std::string(argv[1]) != "dashboard") return argc;
  for (int i = 2; i < argc; ++i)
    if (std::string(argv[i]) == "--train") {
      g_trainer_words.emplace(argv + i + 1, argv + argc);
      return i + 1;
    }
  return argc;
}

void add_dashboard_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand(
      "dashboard", "Watch training runs on a local web page (live, or after they ended); --tui: in the terminal");
  struct Options {
    DashboardOptions web;
    bool tui = false;
    std::vector<std::string> train_args;
  };
  const auto o = std::make_shared<Options>();
  cmd->add_option("runs", o->web.runs, "Run directories (several are overlaid)");
  cmd->add_option("--port", o->web.port, "Port (0 picks a free one)")->capture_default_str();
  cmd->add_option("--host", o->web.host, "Address to listen on (default: this machine only)")->capture_default_str();
  cmd->add_flag("--tui", o->tui,
                "Draw the run in this terminal (loss chart, stats, phases, latest sample, log); keys g p r q");
  // Everything after --train is the trainer's, verbatim (its --port is not the page's): CLI11
  // stops at a subcommand, and a nested one that keeps what it does not know takes them in order.
  // A subcommand's name cannot start with '-', an alias can. Until the first word that is not an
  // option, CLI11 still reads "--" and "++" itself (`--sample-prompt ++`), so main sets the words
  // aside before parsing and they are taken from there.
  auto* train = cmd->add_subcommand("dashboard-train-options", "");
  train->alias("--train");
  train->group("");  // not listed: --tui's help names it
  train->prefix_command();
  train->allow_extras();
  train->set_help_flag();
  cmd->footer("dashboard --tui --train [train options...]: start `anetrain train` with those options (after "
                "--train, all of them the trainer's) and watch its run (--out or --resume)");
  cmd->callback([&run, o, train] {
    const bool launch = train->parsed();
    if (launch) o->train_args = g_trainer_words ? *g_trainer_words : train->remaining();
    run = [o, launch] {
      if (launch && !o->tui) fail("dashboard --train starts a trainer for the terminal view; give --tui before it");
      if (launch && !o->web.runs.empty()) fail("dashboard --tui --train watches the run the trainer writes; give no RUN");
      if (launch) return run_tui("", &o->train_args);
      if (o->web.runs.empty()) fail("dashboard: give a run directory (or --tui --train TRAIN_OPTIONS)");
      if (!o->tui) return run_web(o->web);
      if (o->web.runs.size() != 1) fail("dashboard --tui shows one run; give one run directory");
      return run_tui(o->web.runs[0], nullptr);
    };
  });
}

}  // namespace anetrain
