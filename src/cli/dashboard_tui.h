// `anetrain dashboard --tui RUN` and `dashboard --tui --train ARGS`: the terminal view of a run
// (telemetry/tui.h) with its keys — g a sample now, p pause/resume, r restart from the last
// checkpoint, the log panel's scroll keys, q — over the control file (train/run_control.h) and
// the trainers it starts (cli/dashboard_trainer.h).
#pragma once
#include <string>
#include <vector>

namespace anetrain {

// `train_args` non-null: start `anetrain train` with them and watch the run folder they name.
int run_tui(std::string run, const std::vector<std::string>* train_args);

// The run folder a `train` command line writes: --resume RUN, else --out RUN; "" when it names none.
std::string run_dir_of_train_args(const std::vector<std::string>& args);

}  // namespace anetrain
