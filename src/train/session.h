// One training run as an object: open (or resume) it, then step, evaluate, sample and checkpoint
// it in any order — what `anetrain train`'s loop does on its schedule (train/trainer.cpp) and what
// the C API's training session calls one at a time. Telemetry is written either way; `verbose`
// adds the terminal progress line and messages (the CLI), which a library caller does not want.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/sampler.h"
#include "dist/comm.h"
#include "dist/grad_sync.h"
#include "contract/backend.h"
#include "model/model.h"
#include "model/vocab_compaction.h"
#include "model/workspace.h"
#include "telemetry/jsonl.h"
#include "telemetry/meters.h"
#include "telemetry/progress.h"
#include "core/warn.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/loss_scaler.h"
#include "train/optimizer.h"
#include "train/run_dir.h"
#include "train/trainer.h"

namespace anetrain {

struct StepReport {
  int64_t step = 0;     // optimizer steps completed, this one included
  double loss = 0;      // mean over the micro-batches (NaN when non-finite)
  double grad_norm = 0;
  double lr = 0, ms = 0;
  bool applied = false;  // the update happened (finite, no fp16 overflow)
  bool overflow = false;
  bool stop = false;     // a stop was requested (on any rank: all ranks agree, and stop together)
};

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
  // max_nonfinite in a row, with a `run_end`) and, early on, the --time-budget decision.
  StepReport step();
  // Read at each step (on every rank) to agree on stopping: `anetrain train`'s signal counter.
  void watch_stop(const std::atomic<int>* flag) { stop_flag_ = flag; }
  int ranks() const { return comm_->size(); }
  bool lead() const { return comm_->rank() == 0; }  // the rank that writes
  bool has_validation() const { return have_val_; }
  EvalReport evaluate();  // the fixed validation batches; an `eval` event; the best is tracked
  bool can_sample() const { return sample_tok_ != nullptr; }
  void sample();           // a `sample` event: greedy and sampled completions
  std::string checkpoint();  // RUN/ckpt/step-N (pruned to keep), a `checkpoint` event; its path
  // The `run_end` event; `interrupted`: stopped before the last step ("paused").
  void finish(bool interrupted, const std::string& last_checkpoint);

  const TrainOptions& options() const { return o_; }
  TrainState& state() { return st_; }
  int64_t stop_step() const { return stop_step_; }  // --stop-at, else --steps (after the budget)
  Model& model() { return *model_; }
  void message(const std::string& text);  // a progress message when verbose
  // Why the run cannot go on recording (a telemetry write failed: disk full, I/O error), or "".
  const std::string& telemetry_error() const { return telemetry_error_; }

 private:
  using Clock = std::chrono::steady_clock;
  void decide_budget();
  void emit(const char* event, nlohmann::ordered_json fields);
  void share_options();                 // every rank takes rank 0's options
  void share_model();                   // ranks > 0 build rank 0's model (its config)
  void share_state();                   // rank 0's weights, optimizer and training state
  void save_settings();                 // run.json: the options, paths absolute
  // While it lives, warnings from below (core/warn.h) reach the terminal (verbose) and telemetry.
  WarningScope warnings_here();
  void report_fallbacks();  // the backend's rejected programs: ane_fallback events and warnings
  void watch_disk_space();  // a warning while one can still be written, when the disk fills up
  int64_t fallbacks_ = 0;
  bool disk_warned_ = false;
  std::vector<std::string> pending_warnings_;

  std::unique_ptr<RunDir> run_;  // rank 0's claim on the run folder (and its lock), first to exist

  TrainOptions o_;
  bool verbose_, resuming_;
  std::unique_ptr<Comm> own_comm_;  // the SoloComm when none was given
  Comm* comm_;
  bool overlap_;
  std::unique_ptr<GradSync> sync_;  // with several ranks
  const std::atomic<int>* stop_flag_ = nullptr;
  std::unique_ptr<Backend> be_;
  std::unique_ptr<Model> model_;
  TokenSource train_src_, val_src_;
  bool have_val_ = false;
  std::unique_ptr<Tokenizer> sample_tok_;
  VocabCompaction compaction_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<WindowSampler> sampler_;
  std::unique_ptr<AdamW> opt_;
  TrainState st_;
  std::unique_ptr<JsonlWriter> tel_;
  std::unique_ptr<PowerMeter> power_;
  CpuMeter cpu_use_;
  std::unique_ptr<ProgressLine> progress_;
  LossScaling scaling_;
  double tokens_per_step_ = 0, flops_per_step_ = 0, ema_ms_ = 0;
  int64_t stop_step_ = 0, first_step_ = 0, budget_probe_ = 0;
  bool budget_open_ = false, finished_ = false;
  std::string budget_note_, telemetry_error_;
  Clock::time_point t_train_;
};

}  // namespace anetrain
