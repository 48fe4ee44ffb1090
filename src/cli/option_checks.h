// CLI11 checks over core/option_check.h's ranges: a flag's value is refused while the command
// line is parsed, with the flag's name, before any file is opened or thread started.
#pragma once
#include <string>

#include <CLI/CLI.hpp>

#include "core/option_check.h"
#include "train/trainer.h"

namespace anetrain {

inline CLI::Validator within(const Range& r) {
  return CLI::Validator([r](std::string& text) { return text_range_problem(text, r); }, r.describe());
}

// --threads: the ceiling depends on this machine's cores (and ANETRAIN_FORCE_THREADS).
inline CLI::Validator thread_count() {
  return CLI::Validator(
      [](std::string& text) {
        const std::string problem = text_range_problem(text, threads_range());
        return problem.empty() ? problem
                               : problem + " (0 = all cores; ANETRAIN_FORCE_THREADS=1 allows up to the OpenMP limit)";
      },
      "THREADS");
}

// Flags a command shares with `anetrain train` (fit-batch's --lr, --beta1, ...) get train's
// ranges, from the one table in train/train_options.cpp.
inline void check_like_train(CLI::App* cmd) {
  for (const TrainOptionRule& rule : train_option_rules())
    if (CLI::Option* opt = cmd->get_option_no_throw(rule.flag)) opt->check(within(rule.range));
}

}  // namespace anetrain
