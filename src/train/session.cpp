#include "train/session.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "backends/cpu/gemm.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/load.h"
#include "gen/complete.h"
#include "model/flops.h"
#include "model/transformer.h"

extern "C" void openblas_set_num_threads(int);

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

// {"attention_fwd": {"calls", "eval_ms", "io_ms", "gflop"}, ...} for backends with fused kernels.
nlohmann::json kernels_json(const std::vector<KernelTiming>& timings) {
  nlohmann::json j = nlohmann::json::object();
  for (const KernelTiming& t : timings)
    j[t.name] = {{"calls", t.calls}, {"eval_ms", t.eval_ms}, {"io_ms", t.io_ms}, {"gflop", t.flops / 1e9}};
  return j;
}

std::string fmt_scale(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", s);
  return b;
}

}  // namespace

TrainSession::TrainSession(TrainOptions o, const std::string& resume_dir, bool verbose)
    : o_(std::move(o)), verbose_(verbose), resuming_(!resume_dir.empty()) {
  if (o_.out.empty()) fail("train: --out RUN_DIR is required");
  if (o_.data.empty()) fail("train: no training data (--data SHARD...)");
  if (o_.seq <= 0 || o_.batch <= 0 || o_.accum <= 0 || o_.steps <= 0)
    fail("train: --seq, --batch, --accum, --steps must be > 0");
  if (o_.opt.min_lr < 0) o_.opt.min_lr = 0.1 * o_.opt.lr;
  o_.opt.total_steps = int(o_.steps);
  if (o_.threads < 0 || o_.threads > 4096) fail("train: --threads must be 0 (all cores) to 4096");
  if (o_.threads > 0) {
    omp_set_num_threads(o_.threads);
    openblas_set_num_threads(o_.threads);
  }
  if (o_.backend == "cpu-bf16") fail("train: use --backend cpu --precision bf16 (cpu-bf16 is the tests' name for it)");
  be_ = make_backend(o_.backend, parse_precision(o_.precision));

  // ---- model, data, optimizer ----
  std::optional<std::string> resume_from;
  if (resuming_) {
    resume_from = latest_checkpoint(o_.out);
    if (!resume_from) fail(o_.out + ": no complete checkpoint to resume from");
  }
  model_ = resuming_ ? load_model_checkpoint(*resume_from) : load_model(o_.model, o_.seed).model;
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
                                    flash_attention_for(*be_, m.cfg, o_.batch, o_.seq));
  ws_->act_clip = float(o_.act_clip);
  sampler_ = std::make_unique<WindowSampler>(train_src_, o_.seq, o_.sampling, o_.seed);
  opt_ = std::make_unique<AdamW>(m, o_.opt);

  fs::create_directories(o_.out);
  if (resuming_) {
    load_checkpoint(*resume_from, m, opt_.get(), &st_);
    sampler_->restore(st_.sampler);
  } else {
    if (latest_checkpoint(o_.out))
      fail(o_.out + " already holds a run.\nhint: continue it with `anetrain train --resume " + o_.out +
           "`, or choose a new --out");
    const std::string j = o_.to_json().dump(2) + "\n";
    write_file_atomic((fs::path(o_.out) / "run.json").string(), j.data(), j.size());
  }
  prune_checkpoints(o_.out, 0, -1);  // sweep *.tmp left by a killed predecessor

  // ---- telemetry ----
  tel_ = std::make_unique<JsonlWriter>((fs::path(o_.out) / "telemetry.jsonl").string());
  power_ = open_power_meter();  // RAPL (Linux) or powermetrics (macOS), read once per step
  ModelConfig flop_cfg = m.cfg;
  if (vc) flop_cfg.vocab_size = vc->size();
  tokens_per_step_ = double(o_.batch) * o_.seq * o_.accum;
  flops_per_step_ = flops_per_token(flop_cfg, o_.seq).training() * tokens_per_step_;
  tel_->emit("run_start", {{"resumed_from_step", st_.step}, {"options", o_.to_json()}, {"config", config_to_json(m.cfg)},
                           {"params", m.table.total()}, {"flops_per_step", flops_per_step_},
                           {"compact_vocab", vc ? vc->size() : 0}, {"backend", be_->name()},
                           {"precision", o_.precision}, {"gemm_isa", gemm_isa()},
                           {"threads", omp_get_max_threads()}, {"cpu", cpu_model_name()}, {"git_commit", git_commit()},
                           {"matrix_peak_gflops", be_->matrix_peak_gflops()}, {"power_source", power_->description()}});
  if (verbose_) progress_ = std::make_unique<ProgressLine>();
  char line[512];
  std::snprintf(line, sizeof line,
                "%s %s: %.2fM params, %d×%d tokens × %d accum per step, %s backend, %s, %d threads%s",
                resuming_ ? "resuming" : "training", o_.model.c_str(), m.table.total() / 1e6, o_.batch, o_.seq,
                o_.accum, o_.backend.c_str(), o_.precision.c_str(), omp_get_max_threads(),
                vc ? (", vocab compacted to " + std::to_string(vc->size())).c_str() : "");
  message(line);
  if (resuming_) message("resumed from step " + std::to_string(st_.step) + " of " + o_.out);

  scaling_.enabled = be_->numerics().fp16;
  scaling_.initial = o_.loss_scale;
  scaling_.window = o_.loss_scale_window;
  begin_loss_scaling(scaling_, st_);
  if (scaling_.enabled) {
    std::snprintf(line, sizeof line, "%s computes in fp16: dynamic loss scale %g (doubles after %d clean steps)",
                  be_->name().c_str(), st_.loss_scale, scaling_.window);
    message(line);
  }

  stop_step_ = o_.stop_at > 0 ? std::min(o_.stop_at, o_.steps) : o_.steps;
  // --time-budget: decided once, at a step inside the warmup, where the schedule does not yet
  // depend on the total (with --warmup < 2 the first step's lr used the original total); a run
  // resumed before the probe measures from its resume.
  t_train_ = Clock::now();
  first_step_ = st_.step;
  budget_probe_ = std::min<int64_t>(o_.steps - 1, std::max(1, std::min(20, o_.opt.warmup / 2)));
  budget_open_ = o_.time_budget_s > 0 && st_.step < budget_probe_;
  budget_note_ = o_.time_budget_s > 0 ? "  budget " + std::to_string(int(o_.time_budget_s)) + "s" : "";
}

TrainSession::~TrainSession() {
  if (progress_) progress_->finish();
}

void TrainSession::message(const std::string& text) {
  if (progress_) progress_->message(text);
}

StepReport TrainSession::step() {
  Model& m = *model_;
  Workspace& ws = *ws_;
  const auto t_step = Clock::now();
  // CPU use, power and kernel timings cover the step itself, not the evaluation or sample
  // (which decodes through the same kernels) before it.
  cpu_use_.percent_since_last();
  power_->since_last();
  be_->take_kernel_timings();
  double t_data = 0, t_fwd = 0, t_bwd = 0;
  ws.classifier_ms = 0;
  m.zero_grads();
  double loss = 0;
  const double scale = st_.loss_scale;
  for (int k = 0; k < o_.accum; ++k) {
    auto t = Clock::now();
    sampler_->next_batch(o_.batch, ws.inputs.data(), ws.targets.data());
    t_data += ms_since(t);
    t = Clock::now();
    loss += forward(*be_, m, ws) / o_.accum;
    t_fwd += ms_since(t);
    t = Clock::now();
    backward(*be_, m, ws, float(scale / o_.accum));
    t_bwd += ms_since(t);
  }
  const int64_t step_no = st_.step + 1;
  if (std::find(o_.inject_nan.begin(), o_.inject_nan.end(), step_no) != o_.inject_nan.end()) loss = NAN;
  if (std::find(o_.inject_overflow.begin(), o_.inject_overflow.end(), step_no) != o_.inject_overflow.end())
    m.grads[0] = INFINITY;
  auto t_opt = Clock::now();
  const double scaled_norm = grad_norm(m);
  const StepOutcome outcome = end_loss_scaled_step(scaling_, st_, loss, scaled_norm);
  const bool finite = outcome == StepOutcome::applied;
  const bool overflow = outcome == StepOutcome::overflow;
  // Unscaled before clipping, so the optimizer sees what an fp32 backend would give it.
  const double norm = scaled_norm / scale;
  if (finite) {
    if (scale != 1.0) scale_grads(m, 1.0 / scale);
    opt_->step_with_norm(m, norm);
    st_.nonfinite_consecutive = 0;
  } else if (!overflow) {
    ++st_.nonfinite_consecutive;
    ++st_.nonfinite_total;
  }
  const double opt_ms = ms_since(t_opt);
  st_.step = step_no;
  st_.tokens_seen += uint64_t(tokens_per_step_);
  st_.sampler = sampler_->state();
  if (finite) st_.last_loss = loss;
  const double step_ms = ms_since(t_step);
  ema_ms_ = ema_ms_ == 0 ? step_ms : 0.9 * ema_ms_ + 0.1 * step_ms;
  const double lr = lr_at(o_.opt, step_no - 1);
  const auto watts = power_->since_last();
  nlohmann::json power_parts = nlohmann::json::object();
  if (watts)
    for (const auto& [name, w] : watts->parts) power_parts[name] = w;
  tel_->emit("step", {{"step", st_.step},
                      {"tokens", st_.tokens_seen},
                      {"loss", std::isfinite(loss) ? nlohmann::json(loss) : nlohmann::json()},
                      {"lr", lr},
                      {"grad_norm", std::isfinite(norm) ? nlohmann::json(norm) : nlohmann::json()},
                      {"ms", step_ms},
                      {"tokens_per_s", tokens_per_step_ / (step_ms / 1000.0)},
                      {"gflops", flops_per_step_ / (step_ms / 1000.0) / 1e9},
                      {"phase_ms", {{"data", t_data}, {"forward", t_fwd}, {"backward", t_bwd}, {"optimizer", opt_ms},
                                    {"classifier", ws.classifier_ms}}},
                      {"skipped", !finite},
                      {"loss_scale", scale},
                      {"overflow", overflow},
                      {"rss_mb", rss_mb()},
                      {"peak_rss_mb", peak_rss_mb()},
                      {"cpu_pct", cpu_use_.percent_since_last()},
                      {"power_w", watts ? nlohmann::json(watts->watts) : nlohmann::json()},
                      {"power_parts", power_parts},
                      {"kernels", kernels_json(be_->take_kernel_timings())}});
  if (overflow) {
    tel_->emit("overflow", {{"step", st_.step}, {"loss_scale", st_.loss_scale}, {"total", st_.overflow_total}});
    char buf[160];
    std::snprintf(buf, sizeof buf, "step %lld: fp16 gradients overflowed at loss scale %g; update skipped, scale now %g",
                  (long long)st_.step, scale, st_.loss_scale);
    message(buf);
  } else if (!finite) {
    tel_->emit("nonfinite", {{"step", st_.step}, {"consecutive", st_.nonfinite_consecutive},
                             {"total", st_.nonfinite_total}});
    message("step " + std::to_string(st_.step) + ": non-finite loss or gradient; update skipped (" +
            std::to_string(st_.nonfinite_consecutive) + " in a row)");
    if (st_.nonfinite_consecutive >= o_.max_nonfinite) {
      tel_->emit("run_end", {{"step", st_.step}, {"status", "nonfinite"}});
      finished_ = true;
      if (progress_) progress_->finish();
      fail("training stopped: " + std::to_string(st_.nonfinite_consecutive) +
           " consecutive steps had a non-finite loss or gradient norm (limit --max-nonfinite " +
           std::to_string(o_.max_nonfinite) + ")\nhint: lower --lr, or resume from an earlier checkpoint");
    }
  }
  if (budget_open_ && st_.step >= budget_probe_) decide_budget();
  if (progress_ && o_.log_every > 0 && (st_.step % o_.log_every == 0 || st_.step == stop_step_))
    progress_->update(st_.step, o_.steps, st_.last_loss, lr, tokens_per_step_ / (ema_ms_ / 1000.0),
                      double(o_.steps - st_.step) * ema_ms_ / 1000.0,
                      (scaling_.enabled ? "  scale " + fmt_scale(st_.loss_scale) + "  skipped " +
                                              std::to_string(st_.overflow_total)
                                        : std::string()) +
                          budget_note_);
  StepReport r;
  r.step = st_.step;
  r.loss = loss;
  r.grad_norm = norm;
  r.lr = lr;
  r.ms = step_ms;
  r.applied = finite;
  r.overflow = overflow;
  return r;
}

void TrainSession::decide_budget() {
  budget_open_ = false;
  const double elapsed = std::chrono::duration<double>(Clock::now() - t_train_).count();
  const double per_step = elapsed / double(st_.step - first_step_);  // includes the slow first step
  // An evaluation is eval_batches forward passes, about a third of a step each.
  const double eval_per_step = have_val_ ? 0.4 * o_.eval_batches * per_step / o_.eval_every : 0.0;
  const int64_t fit = st_.step + int64_t((o_.time_budget_s - elapsed) / (per_step + eval_per_step));
  if (fit >= o_.steps) return;
  o_.steps = std::max(st_.step + 1, fit);
  o_.opt.total_steps = int(o_.steps);
  opt_->set_total_steps(int(o_.steps));
  stop_step_ = o_.stop_at > 0 ? std::min(o_.stop_at, o_.steps) : o_.steps;
  const std::string j = o_.to_json().dump(2) + "\n";
  write_file_atomic((fs::path(o_.out) / "run.json").string(), j.data(), j.size());
  char buf[200];
  std::snprintf(buf, sizeof buf, "time budget %.0f s at %.0f ms/step: training %lld steps (the schedule ends there)",
                o_.time_budget_s, per_step * 1e3, (long long)o_.steps);
  message(buf);
  tel_->emit("budget", {{"step", st_.step}, {"time_budget_s", o_.time_budget_s}, {"ms_per_step", per_step * 1e3},
                        {"steps", o_.steps}});
}

EvalReport TrainSession::evaluate() {
  if (!have_val_) fail("train: no validation data (--val-data or --val-frac, with --eval-every > 0)");
  double sum = 0;
  for (int k = 0; k < o_.eval_batches; ++k) {
    validation_batch(val_src_, o_.seq, o_.batch, k, o_.eval_batches, ws_->inputs.data(), ws_->targets.data());
    sum += forward(*be_, *model_, *ws_);
  }
  EvalReport r;
  r.val_loss = sum / o_.eval_batches;
  r.improved = r.val_loss < st_.best_val;
  if (r.improved) {
    st_.best_val = r.val_loss;
    st_.best_step = st_.step;
  }
  tel_->emit("eval", {{"step", st_.step}, {"val_loss", r.val_loss}, {"best_val", st_.best_val}});
  char buf[128];
  std::snprintf(buf, sizeof buf, "step %lld: val loss %.4f%s", (long long)st_.step, r.val_loss, r.improved ? " (best)" : "");
  message(buf);
  return r;
}

void TrainSession::sample() {
  if (!sample_tok_) fail("train: samples need the run's tokenizer (--tokenizer FILE)");
  // Outside the step's timing, like validation: one greedy and one sampled completion.
  const auto t_sample = Clock::now();
  const SamplingParams greedy{0.0f, 1.0f, 0}, warm{0.8f, 0.9f, 0};
  const std::string g = complete_text(*be_, *model_, *sample_tok_, o_.sample_prompt, o_.sample_tokens, greedy, o_.seed);
  const std::string w = complete_text(*be_, *model_, *sample_tok_, o_.sample_prompt, o_.sample_tokens, warm, o_.seed);
  tel_->emit("sample", {{"step", st_.step}, {"prompt", o_.sample_prompt}, {"greedy", g}, {"sampled", w},
                        {"temperature", 0.8}, {"top_p", 0.9}, {"seed", o_.seed}, {"ms", ms_since(t_sample)}});
}

std::string TrainSession::checkpoint() {
  const std::string path = save_checkpoint(o_.out, *model_, *opt_, st_);
  prune_checkpoints(o_.out, o_.keep, st_.best_step);
  tel_->emit("checkpoint", {{"step", st_.step}, {"path", path}, {"best_step", st_.best_step}});
  return path;
}

void TrainSession::finish(bool interrupted, const std::string& last_checkpoint) {
  if (progress_) progress_->finish();
  if (finished_) return;  // ended already (the non-finite limit wrote its own run_end)
  finished_ = true;
  tel_->emit("run_end", {{"step", st_.step}, {"status", interrupted ? "paused" : "done"}, {"loss", st_.last_loss},
                         {"best_val", std::isfinite(st_.best_val) ? nlohmann::json(st_.best_val) : nlohmann::json()},
                         {"checkpoint", last_checkpoint}});
}

}  // namespace anetrain
