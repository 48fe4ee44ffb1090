#include "train/session.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "contract/registry.h"
#include "core/error.h"
#include "core/threads.h"
#include "formats/load.h"
#include "gen/complete.h"
#include "model/flops.h"
#include "model/transformer.h"
#include "train/session_impl.h"

namespace anetrain {

namespace fs = std::filesystem;

namespace {

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// Ids that occur anywhere in the training and validation data (validation targets must be
// representable in the compacted softmax too).
VocabCompaction scan_used_ids(const TokenSource& train, const TokenSource& val, int V) {
  std::vector<uint8_t> used(size_t(V), 0);
  for (const TokenSource* src : {&train, &val})
    for (const auto& seg : src->segments)
      for (size_t i = seg.begin; i < seg.end; ++i) used[seg.shard->at(i)] = 1;
  return VocabCompaction::from_used(used);
}

}  // namespace

TrainSession::Impl::Impl(TrainOptions o, const std::string& resume_dir, bool verbose, Parallel par)
    : o_(std::move(o)), verbose_(verbose), resuming_(!resume_dir.empty()), overlap_(par.overlap) {
  const WarningScope warnings = warnings_here();
  if (!par.comm) own_comm_ = std::make_unique<SoloComm>();
  comm_ = par.comm ? par.comm : own_comm_.get();
  if (ranks() > 1) share_options();
  if (o_.out.empty()) fail("train: --out RUN_DIR is required");
  if (o_.data.empty()) fail("train: no training data (--data SHARD... or a folder `prepare` wrote)");
  o_.expand_prepared_folders();
  if (o_.opt.min_lr < 0) o_.opt.min_lr = 0.1 * o_.opt.lr;
  o_.validate(/*cli_names=*/true);
  o_.opt.total_steps = int(o_.steps);
  // The run folder is claimed (and locked) before anything else reads or writes it; if this
  // constructor fails later, RunDir takes back what it made.
  if (lead()) run_ = std::make_unique<RunDir>(resuming_ ? RunDir::open(o_.out) : RunDir::create(o_.out, o_.out_force));
  // Ranks on one machine share its cores unless told otherwise. When the launcher already bound
  // each rank to its own cores (Open MPI binds by default), those are this rank's share.
  const bool bound = omp_get_num_procs() < int(sysconf(_SC_NPROCESSORS_ONLN));
  const int threads = o_.threads > 0 ? o_.threads
                      : comm_->local_size() > 1 && !bound ? std::max(1, omp_get_num_procs() / comm_->local_size())
                                                          : 0;
  if (ranks() > 1 && o_.threads == 0 && bound && omp_get_num_procs() == 1 && sysconf(_SC_NPROCESSORS_ONLN) > 2 &&
      lead())
    warn("rank 0 may use 1 of this machine's " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) +
         " cores (the launcher bound it to one); mpirun --bind-to none, or --map-by slot:PE=K, gives it more");
  threads_ = threads > 0 ? threads : omp_get_max_threads();
  set_compute_threads(threads_);
  if (const BackendEntry* e = find_backend(o_.backend); e && !e->users_ask.empty())
    fail("train: use " + std::string(e->users_ask) + " (" + o_.backend + " is the tests' name for it)");
  be_ = make_backend(o_.backend, parse_precision(o_.precision));

  // ---- model, data, optimizer ----
  std::optional<std::string> resume_from;
  if (resuming_ && lead()) {
    resume_from = latest_checkpoint(o_.out, run_->checkpoints());
    if (!resume_from) fail(o_.out + ": no complete checkpoint to resume from");
  }
  // A new adapter run: the base is read straight into its layout with fresh adapters (a resumed
  // run's checkpoint already holds its adapters, and its config says so; a held base is reloaded).
  const ModelLayout layout = o_.lora_rank > 0 ? ModelLayout{o_.lora(), parse_base_dtype(o_.base_dtype, "base_dtype")}
                                              : ModelLayout{};
  if (lead() && resuming_) model_ = load_model_checkpoint(*resume_from, true);
  if (lead() && !resuming_) {
    LoadedModel loaded = load_model(o_.model, o_.seed, layout);
    // Adapters learn a correction to a trained model; over a preset's random weights they fine-tune
    // noise. Allowed (benchmarks and memory measurements do it on purpose), but never unannounced.
    if (o_.lora_rank > 0 && (loaded.kind == "preset" || loaded.kind == "config"))
      warn("--lora over " + o_.model + " (a " + loaded.kind + "): its weights are random (seed " +
           std::to_string(o_.seed) + "), so the adapters fine-tune an untrained model; for a pretrained one give "
           "its llama2.c .bin, GGUF, Hugging Face folder or an anetrain checkpoint");
    model_ = std::move(loaded.model);
  }
  if (lead() && !resuming_ && o_.lora_rank > 0) init_adapters(*model_, o_.seed);
  if (model_ && model_->held && o_.sample_every > 0)
    fail("train: --sample-every generates from an fp32 model; with --base-dtype " + o_.base_dtype +
         " sample the run's checkpoints with `anetrain generate` instead");
  if (ranks() > 1 && layout.base != WeightFormat::f32)
    fail("train: --base-dtype " + o_.base_dtype + " runs on one rank (the ranks share fp32 weights)");
  if (ranks() > 1) share_model();
  Model& m = *model_;
  if (o_.seq > m.cfg.max_seq_len)
    fail("train: --seq " + std::to_string(o_.seq) + " exceeds the model's max_seq_len " + std::to_string(m.cfg.max_seq_len));
  open_sources(o_.data, o_.val_data, o_.val_frac, train_src_, val_src_);
  for (const auto& s : train_src_.shards) s->check_vocab(uint32_t(m.cfg.vocab_size));
  for (const auto& s : val_src_.shards) s->check_vocab(uint32_t(m.cfg.vocab_size));
  have_val_ = !val_src_.segments.empty() && o_.eval_every > 0 && o_.eval_batches > 0;
  // Loaded before any step runs: a bad tokenizer is an error now, not after an hour of training.
  if (o_.sample_every > 0) {
    if (o_.tokenizer.empty()) fail("train: --sample-every needs the run's tokenizer (--tokenizer FILE)");
    sample_tok_ = load_tokenizer(o_.tokenizer, m.cfg.vocab_size);
    if (sample_tok_->vocab_size() > m.cfg.vocab_size)
      fail(o_.tokenizer + ": " + std::to_string(sample_tok_->vocab_size()) + " tokens, but the model has only " +
           std::to_string(m.cfg.vocab_size));
    for (const auto& s : train_src_.shards)
      if (s->has_header() && s->header().tokenizer_fingerprint != 0 &&
          s->header().tokenizer_fingerprint != sample_tok_->fingerprint())
        fail(o_.tokenizer + ": not the tokenizer " + s->path() + " was prepared with; samples would be unreadable");
  }

  if (o_.compact_vocab) compaction_ = scan_used_ids(train_src_, val_src_, m.cfg.vocab_size);
  const VocabCompaction* vc = o_.compact_vocab ? &compaction_ : nullptr;
  ws_ = std::make_unique<Workspace>(m.cfg, o_.batch, o_.seq, vc, /*keep_logits=*/false,
                                    flash_attention_for(*be_, m.cfg, o_.batch, o_.seq),
                                    parse_recompute(o_.recompute, "recompute"));
  ws_->act_clip = float(o_.act_clip);
  // Every program a step runs is compiled now, not at step 1: all rejections are known (and with
  // --ane-strict refused) before anything trains.
  if (CompiledPrograms* programs = be_->caps().programs) {
    programs->allow_program_fallback(!o_.ane_strict);
    programs->prepare_training(ws_->dims);
  }
  sampler_ = std::make_unique<WindowSampler>(train_src_, o_.seq, o_.sampling, o_.seed);
  opt_ = std::make_unique<AdamW>(m, o_.opt);

  if (lead()) {
    if (resuming_) {
      load_checkpoint(*resume_from, m, opt_.get(), &st_);
      // The list, with any checkpoint adopted on opening; and --steps, which moves the schedule's
      // end: a later resume without it must keep that schedule, not go back to the first.
      if (o_.steps < st_.step)
        fail("train: --steps " + std::to_string(o_.steps) + " ends before the run's step " + std::to_string(st_.step) +
             " (its newest checkpoint, " + *resume_from + "); give more steps, or use that checkpoint as it is");
      nlohmann::json settings = run_->settings();
      settings["steps"] = o_.steps;
      run_->write_settings(settings);
    } else {
      save_settings();
    }
    sweep_checkpoint_temporaries(*run_);  // left by a killed predecessor
  }
  if (ranks() > 1) {
    share_state();
    sync_ = std::make_unique<GradSync>(*comm_, m, overlap_);
  }
  const int trained_with = st_.world_size;
  if (resuming_) sampler_->restore(st_.sampler);
  st_.world_size = ranks();

  // ---- telemetry, loss scaling, the step's parts ----
  power_ = open_power_meter();  // RAPL (Linux) or powermetrics (macOS), read once per step
  if (lead()) tel_ = std::make_unique<JsonlWriter>((fs::path(o_.out) / "telemetry.jsonl").string());
  ModelConfig flop_cfg = m.cfg;
  if (vc) flop_cfg.vocab_size = vc->size();
  tokens_per_step_ = double(o_.batch) * o_.seq * o_.accum * ranks();
  // A loss mask sends only the counted rows to the classifier: its share is counted per step.
  flops_per_step_ = training_step_flops(m.table, flop_cfg, o_.seq, tokens_per_step_, tokens_per_step_);
  classifier_flops_per_row_ = (flops_per_step_ - training_step_flops(m.table, flop_cfg, o_.seq, tokens_per_step_, 0)) /
                              tokens_per_step_;
  policy_.scaling = loss_scaling_for(*be_);
  policy_.scaling.initial = o_.loss_scale;
  policy_.scaling.window = o_.loss_scale_window;
  policy_.max_nonfinite = o_.max_nonfinite;
  policy_.inject_nan = o_.inject_nan;
  policy_.inject_overflow = o_.inject_overflow;
  policy_.lora_dropout = o_.lora_rank > 0 ? o_.lora_dropout : 0.0;
  policy_.dropout_seed = o_.seed;
  begin_loss_scaling(policy_.scaling, st_);
  batches_.per_rank = o_.accum;
  // Loss masks (prepare --chat): each window's mask comes with it; without them the workspace's
  // mask stays empty and a step is what it always was.
  train_masks_ = train_src_.has_masks();
  if (train_masks_) {
    ws_->loss_mask.assign(size_t(o_.batch) * o_.seq, 1);
    batches_.window_counts = [this](int micro) { return sampler_->peek_target_counts(uint64_t(micro) * o_.batch); };
  }
  batches_.next = [this]() -> Workspace& {
    sampler_->next_batch(o_.batch, ws_->inputs.data(), ws_->targets.data(),
                         train_masks_ ? ws_->loss_mask.data() : nullptr);
    return *ws_;
  };
  batches_.skip = [this] { sampler_->skip(o_.batch); };
  announce_start(trained_with);

  stop_step_ = o_.stop_at > 0 ? std::min(o_.stop_at, o_.steps) : o_.steps;
  // --time-budget: decided once, at the warmup's last step (at most the 200th), before the
  // schedule depends on the total (with --warmup < 2 the first step's lr used the original total);
  // a run resumed before the probe measures from its resume. That late, the pace is the steady
  // one: a probe at step 20 of the default job read 230 ms/step where the run then took 182 — a
  // machine busy at the start — and trained 983 steps in 178 s of its 240.
  t_train_ = Clock::now();
  first_step_ = st_.step;
  const int64_t warmup_steps = o_.opt.warmup / std::max(1, o_.opt.lr_micro_steps);
  budget_probe_ = std::min<int64_t>(o_.steps - 1, std::clamp<int64_t>(warmup_steps, 1, 200));
  budget_open_ = o_.time_budget_s > 0 && st_.step < budget_probe_;
  budget_note_ = o_.time_budget_s > 0 ? "  budget " + std::to_string(int(o_.time_budget_s)) + "s" : "";
}

TrainSession::Impl::~Impl() {
  if (progress_) progress_->finish();
}

void TrainSession::Impl::message(const std::string& text) {
  if (progress_) progress_->message(text);
}

StepResult TrainSession::Impl::step() {
  const WarningScope warnings = warnings_here();
  const auto t_step = Clock::now();
  // CPU use, power and kernel timings cover the step itself, not the evaluation or sample
  // (which decodes through the same kernels) before it.
  cpu_use_.percent_since_last();
  power_->since_last();
  take_kernel_timings(be_->caps());
  report_compiles(false);  // an evaluation's or sample's programs, before the step's own
  const StepContext ctx{*be_, *model_, *opt_, comm_, sync_.get(),
                        [this] { return (stop_flag_ && stop_flag_->load() != 0) || !telemetry_error_.empty(); }};
  StepResult r = train_step(ctx, policy_, batches_, st_);
  st_.tokens_seen += uint64_t(tokens_per_step_);
  st_.sampler = sampler_->state();
  const double step_ms = ms_since(t_step);
  report_step(r, step_ms);
  r.ms = step_ms;
  return r;
}

EvalReport TrainSession::Impl::evaluate() {
  const WarningScope warnings = warnings_here();
  if (!have_val_) fail("train: no validation data (--val-data or --val-frac, with --eval-every > 0)");
  // With loss masks the validation loss is the mean over the targets that count, not over windows.
  const bool masked = val_src_.has_masks();
  if (masked) ws_->loss_mask.resize(size_t(o_.batch) * o_.seq);
  double sum = 0, counted = 0;
  for (int k = comm_->rank(); k < o_.eval_batches; k += ranks()) {  // the ranks share the batches
    validation_batch(val_src_, o_.seq, o_.batch, k, o_.eval_batches, ws_->inputs.data(), ws_->targets.data(),
                     masked ? ws_->loss_mask.data() : nullptr);
    if (!masked) {
      sum += forward(*be_, *model_, *ws_);
      continue;
    }
    const double rows = double(ws_->counted_rows());
    sum += forward(*be_, *model_, *ws_) * rows;
    counted += rows;
  }
  if (masked && !train_masks_) ws_->loss_mask.clear();
  if (ranks() > 1) {
    const double mine[2] = {sum, counted};
    std::vector<double> all(2 * static_cast<size_t>(ranks()));
    comm_->allgather(mine, 2, all.data(), "the evaluation at step " + std::to_string(st_.step));
    sum = counted = 0;
    for (int k = 0; k < ranks(); ++k) {
      sum += all[2 * size_t(k)];
      counted += all[2 * size_t(k) + 1];
    }
  }
  EvalReport r;
  r.val_loss = masked ? (counted > 0 ? sum / counted : NAN) : sum / o_.eval_batches;
  r.improved = r.val_loss < st_.best_val;
  if (r.improved) {
    st_.best_val = r.val_loss;
    st_.best_step = st_.step;
  }
  emit("eval", {{"step", st_.step}, {"val_loss", r.val_loss}, {"best_val", st_.best_val}});
  char buf[128];
  std::snprintf(buf, sizeof buf, "step %lld: val loss %.4f%s", (long long)st_.step, r.val_loss, r.improved ? " (best)" : "");
  message(buf);
  return r;
}

void TrainSession::Impl::sample() {
  const WarningScope warnings = warnings_here();
  if (!sample_tok_) fail("train: samples need the run's tokenizer (--tokenizer FILE)");
  if (!lead()) return;  // rank 0 writes the telemetry; the others' would be the same text
  // Outside the step's timing, like validation: one greedy and one sampled completion.
  const auto t_sample = Clock::now();
  const SamplingParams greedy{0.0f, 1.0f, 0}, warm{0.8f, 0.9f, 0};
  const std::string g = complete_text(*be_, *model_, *sample_tok_, o_.sample_prompt, o_.sample_tokens, greedy, o_.seed);
  const std::string w = complete_text(*be_, *model_, *sample_tok_, o_.sample_prompt, o_.sample_tokens, warm, o_.seed);
  emit("sample", {{"step", st_.step}, {"prompt", o_.sample_prompt}, {"greedy", g}, {"sampled", w},
                        {"temperature", 0.8}, {"top_p", 0.9}, {"seed", o_.seed}, {"ms", ms_since(t_sample)}});
}

std::string TrainSession::Impl::checkpoint() {
  const WarningScope warnings = warnings_here();
  if (!lead()) return "";  // every rank holds the same weights; rank 0 alone writes them
  const std::string path = save_checkpoint(*run_, *model_, *opt_, st_);
  if (path.empty()) return path;  // a folder of someone else's has that step's name (warned)
  prune_checkpoints(*run_, o_.keep, st_.best_step);
  emit("checkpoint", {{"step", st_.step}, {"path", path}, {"best_step", st_.best_step}});
  return path;
}

void TrainSession::Impl::finish(bool interrupted, const std::string& last_checkpoint) {
  const WarningScope warnings = warnings_here();
  if (progress_) progress_->finish();
  if (finished_) return;  // ended already (the non-finite limit wrote its own run_end)
  finished_ = true;
  report_efficiency();
  emit("run_end", {{"step", st_.step}, {"status", interrupted ? "paused" : "done"}, {"loss", st_.last_loss},
                         {"best_val", std::isfinite(st_.best_val) ? nlohmann::json(st_.best_val) : nlohmann::json()},
                         {"checkpoint", last_checkpoint}});
}


// ---- the interface (train/session.h) ----

TrainSession::TrainSession(TrainOptions o, const std::string& resume_dir, bool verbose, Parallel par)
    : impl_(std::make_unique<Impl>(std::move(o), resume_dir, verbose, par)) {}
TrainSession::~TrainSession() = default;
StepResult TrainSession::step() {
  set_compute_threads(impl_->threads_);
  return impl_->step();
}
void TrainSession::watch_stop(const std::atomic<int>* flag) { impl_->stop_flag_ = flag; }
int TrainSession::ranks() const { return impl_->ranks(); }
bool TrainSession::lead() const { return impl_->lead(); }
bool TrainSession::has_validation() const { return impl_->have_val_; }
EvalReport TrainSession::evaluate() {
  set_compute_threads(impl_->threads_);
  return impl_->evaluate();
}
bool TrainSession::can_sample() const { return impl_->sample_tok_ != nullptr; }
void TrainSession::sample() {
  set_compute_threads(impl_->threads_);
  impl_->sample();
}
std::string TrainSession::checkpoint() { return impl_->checkpoint(); }
void TrainSession::finish(bool interrupted, const std::string& last_checkpoint) {
  impl_->finish(interrupted, last_checkpoint);
}
const TrainOptions& TrainSession::options() const { return impl_->o_; }
TrainState& TrainSession::state() { return impl_->st_; }
int64_t TrainSession::stop_step() const { return impl_->stop_step_; }
Model& TrainSession::model() { return *impl_->model_; }
void TrainSession::message(const std::string& text) { impl_->message(text); }
const std::string& TrainSession::telemetry_error() const { return impl_->telemetry_error_; }

}  // namespace anetrain
