// Option parsing of every command: the input is an argv (NUL-separated words), parsed by the
// same CLI11 app `anetrain` builds, with every flag's range check — but nothing is run. A parse
// error is the expected answer to bad words; a crash, a sanitizer report or any other exception
// escaping the parse is a finding.
#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> words{"anetrain"};
  std::string cur;
  for (size_t i = 0; i < size && words.size() < 40; ++i) {
    if (data[i] == 0) {
      words.push_back(cur);
      cur.clear();
    } else {
      cur += char(data[i]);
    }
  }
  if (!cur.empty() && words.size() < 40) words.push_back(cur);
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  CLI::App app{"anetrain"};
  anetrain::Command run;
  anetrain::add_all_commands(app, run);
  try {
    app.parse(int(argv.size()), argv.data());
  } catch (const CLI::Error&) {  // ParseError and friends: --help, a bad value, an unknown flag
  }
  return 0;
}
