// TrainSession's state and the work behind its interface, private to the session's files:
// session.cpp (setup, steps, evaluation, samples, checkpoints), session_events.cpp (what the
// session tells the outside) and session_share.cpp (data parallel start-up).
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "contract/backend.h"
#include "core/warn.h"
#include "data/sampler.h"
#include "dist/comm.h"
#include "dist/grad_sync.h"
#include "model/model.h"
#include "model/vocab_compaction.h"
#include "model/workspace.h"
#include "telemetry/efficiency.h"
#include "telemetry/jsonl.h"
#include "telemetry/meters.h"
#include "telemetry/progress.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/run_dir.h"
#include "train/session.h"
#include "train/step.h"
#include "train/trainer.h"

namespace anetrain {

class TrainSession::Impl {
 public:
  using Clock = std::chrono::steady_clock;

  Impl(TrainOptions o, const std::string& resume_dir, bool verbose, Parallel par);
  ~Impl();
  StepResult step();
  EvalReport evaluate();
  void sample();
  std::string checkpoint();
  void finish(bool interrupted, const std::string& last_checkpoint);
  void message(const std::string& text);
  int ranks() const { return comm_->size(); }
  bool lead() const { return comm_->rank() == 0; }

  // ---- session_events.cpp ----
  void announce_start(int trained_with);  // run_start, pending warnings, the opening messages
  // A finished step's `step` event (and `overflow`/`nonfinite`), fallbacks, disk space, the budget
  // decision and the progress line; at the non-finite limit a `run_end`, then it throws.
  void report_step(const StepResult& r, double step_ms);
  void decide_budget();
  void emit(const char* event, nlohmann::ordered_json fields);
  void save_settings();  // run.json: the options, paths absolute
  // While it lives, warnings from below (core/warn.h) reach the terminal (verbose) and telemetry.
  WarningScope warnings_here();
  void report_fallbacks();  // the backend's rejected programs: ane_fallback events and warnings
  // The programs compiled since the last call: a `programs` event, and their times in the
  // efficiency totals (`in_step`: compiled during the step just taken).
  void report_compiles(bool in_step);
  void report_efficiency();  // at the end: the `efficiency` event and, when verbose, its lines
  void watch_disk_space();  // a warning while one can still be written, when the disk fills up

  // ---- session_share.cpp ----
  void share_options();  // every rank takes rank 0's options
  void share_model();    // ranks > 0 build rank 0's model (its config)
  void share_state();    // rank 0's weights, optimizer and training state

  int64_t fallbacks_ = 0;
  const Clock::time_point t_open_ = Clock::now();  // the efficiency report's wall time starts here
  EfficiencyTotals efficiency_;
  MatrixPeak peak_;  // measured (or looked up) once, at the start
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
  StepPolicy policy_;  // loss scaling, the non-finite limit, the testing hooks
  MicroBatches batches_;
  std::unique_ptr<JsonlWriter> tel_;
  std::unique_ptr<PowerMeter> power_;
  CpuMeter cpu_use_;
  std::unique_ptr<ProgressLine> progress_;
  bool train_masks_ = false;        // the training data has loss masks: steps weigh counted targets
  int64_t empty_windows_total_ = 0;  // windows in which no target counted (this process's run)
  double tokens_per_step_ = 0, flops_per_step_ = 0, ema_ms_ = 0;
  double classifier_flops_per_row_ = 0;  // flops_per_step_'s classifier share, per row that reaches it
  int64_t stop_step_ = 0, first_step_ = 0, budget_probe_ = 0;
  // The session's thread count, set again by every call that computes: OpenMP keeps a count per
  // thread, and a library user may create the session on one thread and step it on another.
  int threads_ = 0;
  bool budget_open_ = false, finished_ = false;
  std::string budget_note_, telemetry_error_;
  Clock::time_point t_train_, t_first_step_done_;
};

}  // namespace anetrain
