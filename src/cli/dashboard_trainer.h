// A trainer started by `anetrain dashboard --tui` (`--train ARGS`, or `train --resume RUN` for the
// p and r keys): `anetrain train ARGS` in a session of its own — so the dashboard's Ctrl-C or a
// closed terminal never reaches it — with its output through a pipe the dashboard reads. Its lines
// go to the log panel and to RUN/train.log, from the moment RUN is a run folder of anetrain's
// (run.json with the marker; lines before that are held). train.log is anetrain's file: made by
// the dashboard with a first line of its own, appended to only when that line is there, never
// replaced; a train.log without it is left alone and the output is then only shown. Leaving
// the dashboard with the trainer running hands the pipe to a small forked relay that keeps
// copying it into train.log until the trainer ends.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace anetrain {

class LaunchedTrainer {
 public:
  // Throws Error when the program cannot be started.
  LaunchedTrainer(const std::vector<std::string>& train_args, std::string run_dir);
  ~LaunchedTrainer();
  LaunchedTrainer(const LaunchedTrainer&) = delete;
  LaunchedTrainer& operator=(const LaunchedTrainer&) = delete;

  // Whole lines printed since the last call (without blocking); they are also logged.
  std::vector<std::string> take_lines();
  // False once it exited (exit_code then says how: the status, or 128 + the signal).
  bool running();
  int exit_code() const { return exit_code_; }
  pid_t pid() const { return pid_; }
  // Why its output is not kept in RUN/train.log, or "".
  const std::string& log_problem() const { return log_problem_; }
  // The dashboard leaves while it runs: a relay process keeps its output going to train.log.
  void hand_off();

 private:
  void log(const std::string& text);
  std::string run_dir_, held_, partial_, log_problem_;
  pid_t pid_ = -1;
  int out_fd_ = -1, log_fd_ = -1;
  bool log_tried_ = false;
  int exit_code_ = -1;
};

}  // namespace anetrain
