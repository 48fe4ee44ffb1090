// One training run as an object: open (or resume) it, then step, evaluate, sample and checkpoint
// it in any order — what `anetrain train`'s loop does on its schedule (train/trainer.cpp) and what
// the C API's training session calls one at a time. Telemetry is written either way; `verbose`
// adds the terminal progress line and messages (the CLI), which a library caller does not want.
// What a step does is train/step.h's; the session adds the data, the schedule, the run folder and
// what it tells the outside (train/session_impl.h holds its state).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "train/step.h"

namespace anetrain {

class Comm;
struct Model;
struct TrainOptions;
struct TrainState;

// Data parallel training: the ranks (a SoloComm when null) and whether gradient sums overlap
// the backward pass (off only to measure what the overlap saves).
struct Parallel {
  Comm* comm = nullptr;
  bool overlap = true;
};

struct EvalReport {
  double val_loss = 0;
  bool improved = false;  // a new best validation loss
};

class TrainSession {
 public:
  // Throws Error on bad options, data or checkpoints — before anything of a run on disk changes.
  // With several ranks, every rank constructs one (same options); rank 0's options, model and
  // state are sent to the others, and only rank 0 writes to the run directory.
  TrainSession(TrainOptions o, const std::string& resume_dir, bool verbose, Parallel par = {});
  ~TrainSession();
  TrainSession(const TrainSession&) = delete;
  TrainSession& operator=(const TrainSession&) = delete;

  // One optimizer step (accum micro-batches), its `step` event, the non-finite guard (throws after
  // max_nonfinite in a row, with a `run_end`) and, early on, the --time-budget decision. The
  // result's `ms` is the whole step's, its telemetry included.
  StepResult step();
  // Read at each step (on every rank) to agree on stopping: `anetrain train`'s signal counter.
  void watch_stop(const std::atomic<int>* flag);
  int ranks() const;
  bool lead() const;  // the rank that writes
  bool has_validation() const;
  EvalReport evaluate();  // the fixed validation batches; an `eval` event; the best is tracked
  bool can_sample() const;
  void sample();             // a `sample` event: greedy and sampled completions
  std::string checkpoint();  // RUN/ckpt/step-N (pruned to keep), a `checkpoint` event; its path
  // The `run_end` event; `interrupted`: stopped before the last step ("paused").
  void finish(bool interrupted, const std::string& last_checkpoint);

  const TrainOptions& options() const;
  TrainState& state();
  int64_t stop_step() const;  // --stop-at, else --steps (after the budget)
  Model& model();
  void message(const std::string& text);  // a progress message when verbose
  // Why the run cannot go on recording (a telemetry write failed: disk full, I/O error), or "".
  const std::string& telemetry_error() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anetrain
