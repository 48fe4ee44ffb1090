#include "train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/load.h"
#include "gen/complete.h"
#include "tokenizer/tokenizer.h"
#include "backends/cpu/gemm.h"
#include "kernels/backend.h"
#include "model/flops.h"
#include "model/transformer.h"
#include "telemetry/jsonl.h"
#include "telemetry/meters.h"
#include "telemetry/progress.h"
#include "train/checkpoint.h"
#include "train/loss_scaler.h"

extern "C" void openblas_set_num_threads(int);

namespace anetrain {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// First SIGINT/SIGTERM: finish the step, checkpoint, exit 0. Second SIGINT: leave at once —
// safe because every checkpoint is written to a temp name and renamed into place.
std::atomic<int> g_stop_signals{0};
extern "C" void on_stop_signal(int sig) {
  if (g_stop_signals.fetch_add(1) >= 1 && sig == SIGINT) {
    const char msg[] = "\nanetrain: second interrupt, exiting now (checkpoints on disk are intact)\n";
    ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(130);
  }
}

void install_signal_handlers() {
  g_stop_signals = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
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

double evaluate(Backend& be, Model& m, Workspace& ws, const TokenSource& val, const TrainOptions& o) {
  double sum = 0;
  for (int k = 0; k < o.eval_batches; ++k) {
    validation_batch(val, o.seq, o.batch, k, o.eval_batches, ws.inputs.data(), ws.targets.data());
    sum += forward(be, m, ws);
  }
  return sum / o.eval_batches;
}

}  // namespace

// {"attention_fwd": {"calls", "eval_ms", "io_ms", "gflop"}, ...} for backends with fused kernels.
static nlohmann::json kernels_json(const std::vector<KernelTiming>& timings) {
  nlohmann::json j = nlohmann::json::object();
  for (const KernelTiming& t : timings)
    j[t.name] = {{"calls", t.calls}, {"eval_ms", t.eval_ms}, {"io_ms", t.io_ms}, {"gflop", t.flops / 1e9}};
  return j;
}

static std::string fmt_scale(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", s);
  return b;
}

TrainResult train(TrainOptions o, const std::string& resume_dir) {
  const bool resuming = !resume_dir.empty();
  if (o.out.empty()) fail("train: --out RUN_DIR is required");
  if (o.data.empty()) fail("train: no training data (--data SHARD...)");
  if (o.seq <= 0 || o.batch <= 0 || o.accum <= 0 || o.steps <= 0) fail("train: --seq, --batch, --accum, --steps must be > 0");
  if (o.opt.min_lr < 0) o.opt.min_lr = 0.1 * o.opt.lr;
  o.opt.total_steps = int(o.steps);
  if (o.threads > 0) {
    omp_set_num_threads(o.threads);
    openblas_set_num_threads(o.threads);
  }
  if (o.backend == "cpu-bf16") fail("train: use --backend cpu --precision bf16 (cpu-bf16 is the tests' name for it)");
  auto be = make_backend(o.backend, parse_precision(o.precision));

  // ---- model, data, optimizer ----
  std::optional<std::string> resume_from;
  if (resuming) {
    resume_from = latest_checkpoint(o.out);
    if (!resume_from) fail(o.out + ": no complete checkpoint to resume from");
  }
  std::unique_ptr<Model> owned = resuming ? load_model_checkpoint(*resume_from) : load_model(o.model, o.seed).model;
  Model& m = *owned;
  if (o.seq > m.cfg.max_seq_len)
    fail("train: --seq " + std::to_string(o.seq) + " exceeds the model's max_seq_len " + std::to_string(m.cfg.max_seq_len));
  TokenSource train_src, val_src;
  open_sources(o.data, o.val_data, o.val_frac, train_src, val_src);
  for (const auto& s : train_src.shards) s->check_vocab(uint32_t(m.cfg.vocab_size));
  for (const auto& s : val_src.shards) s->check_vocab(uint32_t(m.cfg.vocab_size));
  const bool have_val = !val_src.segments.empty() && o.eval_every > 0 && o.eval_batches > 0;
  // Loaded before any step runs: a bad tokenizer is an error now, not after an hour of training.
  std::unique_ptr<Tokenizer> sample_tok;
  if (o.sample_every > 0) {
    if (o.tokenizer.empty()) fail("train: --sample-every needs the run's tokenizer (--tokenizer FILE)");
    sample_tok = load_tokenizer(o.tokenizer, m.cfg.vocab_size);
    if (sample_tok->vocab_size() > m.cfg.vocab_size)
      fail(o.tokenizer + ": " + std::to_string(sample_tok->vocab_size()) + " tokens, but the model has only " +
           std::to_string(m.cfg.vocab_size));
    for (const auto& s : train_src.shards)
      if (s->has_header() && s->header().tokenizer_fingerprint != 0 &&
          s->header().tokenizer_fingerprint != sample_tok->fingerprint())
        fail(o.tokenizer + ": not the tokenizer " + s->path() + " was prepared with; samples would be unreadable");
  }

  VocabCompaction compaction;
  if (o.compact_vocab) compaction = scan_used_ids(train_src, val_src, m.cfg.vocab_size);
  const VocabCompaction* vc = o.compact_vocab ? &compaction : nullptr;
  Workspace ws(m.cfg, o.batch, o.seq, vc, /*keep_logits=*/false, flash_attention_for(*be, m.cfg, o.batch, o.seq));
  ws.act_clip = float(o.act_clip);
  WindowSampler sampler(train_src, o.seq, o.sampling, o.seed);
  AdamW opt(m, o.opt);
  TrainState st;

  fs::create_directories(o.out);
  if (resuming) {
    load_checkpoint(*resume_from, m, &opt, &st);
    sampler.restore(st.sampler);
  } else {
    if (latest_checkpoint(o.out))
      fail(o.out + " already holds a run.\nhint: continue it with `anetrain train --resume " + o.out +
           "`, or choose a new --out");
    const std::string j = o.to_json().dump(2) + "\n";
    write_file_atomic((fs::path(o.out) / "run.json").string(), j.data(), j.size());
  }
  prune_checkpoints(o.out, 0, -1);  // sweep *.tmp left by a killed predecessor

  // ---- telemetry ----
  JsonlWriter tel((fs::path(o.out) / "telemetry.jsonl").string());
  const auto power = open_power_meter();  // RAPL (Linux) or powermetrics (macOS), read once per step
  CpuMeter cpu_use;
  ModelConfig flop_cfg = m.cfg;
  if (vc) flop_cfg.vocab_size = vc->size();
  const double tokens_per_step = double(o.batch) * o.seq * o.accum;
  const double flops_per_step = flops_per_token(flop_cfg, o.seq).training() * tokens_per_step;
  tel.emit("run_start", {{"resumed_from_step", st.step}, {"options", o.to_json()}, {"config", config_to_json(m.cfg)},
                         {"params", m.table.total()}, {"flops_per_step", flops_per_step},
                         {"compact_vocab", vc ? vc->size() : 0}, {"backend", be->name()},
                         {"precision", o.precision}, {"gemm_isa", gemm_isa()},
                         {"threads", omp_get_max_threads()}, {"cpu", cpu_model_name()}, {"git_commit", git_commit()},
                         {"matrix_peak_gflops", be->matrix_peak_gflops()}, {"power_source", power->description()}});
  ProgressLine progress;
  char line[512];
  std::snprintf(line, sizeof line,
                "%s %s: %.2fM params, %d×%d tokens × %d accum per step, %s backend, %s, %d threads%s",
                resuming ? "resuming" : "training", o.model.c_str(), m.table.total() / 1e6, o.batch, o.seq, o.accum,
                o.backend.c_str(), o.precision.c_str(), omp_get_max_threads(),
                vc ? (", vocab compacted to " + std::to_string(vc->size())).c_str() : "");
  progress.message(line);
  if (resuming) progress.message("resumed from step " + std::to_string(st.step) + " of " + o.out);

  LossScaling scaling;
  scaling.enabled = be->numerics().fp16;
  scaling.initial = o.loss_scale;
  scaling.window = o.loss_scale_window;
  begin_loss_scaling(scaling, st);
  if (scaling.enabled) {
    std::snprintf(line, sizeof line, "%s computes in fp16: dynamic loss scale %g (doubles after %d clean steps)",
                  be->name().c_str(), st.loss_scale, scaling.window);
    progress.message(line);
  }

  install_signal_handlers();
  TrainResult res;
  double ema_ms = 0;
  int64_t stop_step = o.stop_at > 0 ? std::min(o.stop_at, o.steps) : o.steps;
  // --time-budget: decided once, at a step inside the warmup, where the schedule does not yet
  // depend on the total.
  const auto t_train = Clock::now();
  const int64_t first_step = st.step;
  // Inside the warmup where there is one (with --warmup < 2 the first step's lr used the original
  // total); a run resumed before the probe measures from its resume.
  const int64_t budget_probe = std::min<int64_t>(o.steps - 1, std::max(1, std::min(20, o.opt.warmup / 2)));
  bool budget_open = o.time_budget_s > 0 && st.step < budget_probe;
  std::string budget_note = o.time_budget_s > 0 ? "  budget " + std::to_string(int(o.time_budget_s)) + "s" : "";
  while (st.step < stop_step && g_stop_signals == 0) {
    const auto t_step = Clock::now();
    // CPU use, power and kernel timings cover the step itself, not the evaluation or sample
    // (which decodes through the same kernels) before it.
    cpu_use.percent_since_last();
    power->since_last();
    be->take_kernel_timings();
    double t_data = 0, t_fwd = 0, t_bwd = 0;
    ws.classifier_ms = 0;
    m.zero_grads();
    double loss = 0;
    const double scale = st.loss_scale;
    for (int k = 0; k < o.accum; ++k) {
      auto t = Clock::now();
      sampler.next_batch(o.batch, ws.inputs.data(), ws.targets.data());
      t_data += ms_since(t);
      t = Clock::now();
      loss += forward(*be, m, ws) / o.accum;
      t_fwd += ms_since(t);
      t = Clock::now();
      backward(*be, m, ws, float(scale / o.accum));
      t_bwd += ms_since(t);
    }
    const int64_t step_no = st.step + 1;
    if (std::find(o.inject_nan.begin(), o.inject_nan.end(), step_no) != o.inject_nan.end()) loss = NAN;
    if (std::find(o.inject_overflow.begin(), o.inject_overflow.end(), step_no) != o.inject_overflow.end())
      m.grads[0] = INFINITY;
    auto t_opt = Clock::now();
    const double scaled_norm = grad_norm(m);
    const StepOutcome outcome = end_loss_scaled_step(scaling, st, loss, scaled_norm);
    const bool finite = outcome == StepOutcome::applied;
    const bool overflow = outcome == StepOutcome::overflow;
    // Unscaled before clipping, so the optimizer sees what an fp32 backend would give it.
    const double norm = scaled_norm / scale;
    if (finite) {
      if (scale != 1.0) scale_grads(m, 1.0 / scale);
      opt.step_with_norm(m, norm);
      st.nonfinite_consecutive = 0;
    } else if (!overflow) {
      ++st.nonfinite_consecutive;
      ++st.nonfinite_total;
    }
    const double opt_ms = ms_since(t_opt);
    st.step = step_no;
    st.tokens_seen += uint64_t(tokens_per_step);
    st.sampler = sampler.state();
    if (finite) st.last_loss = loss;
    const double step_ms = ms_since(t_step);
    ema_ms = ema_ms == 0 ? step_ms : 0.9 * ema_ms + 0.1 * step_ms;
    const double lr = lr_at(o.opt, step_no - 1);
    const auto watts = power->since_last();
    nlohmann::json power_parts = nlohmann::json::object();
    if (watts)
      for (const auto& [name, w] : watts->parts) power_parts[name] = w;
    tel.emit("step", {{"step", st.step},
                      {"tokens", st.tokens_seen},
                      {"loss", std::isfinite(loss) ? nlohmann::json(loss) : nlohmann::json()},
                      {"lr", lr},
                      {"grad_norm", std::isfinite(norm) ? nlohmann::json(norm) : nlohmann::json()},
                      {"ms", step_ms},
                      {"tokens_per_s", tokens_per_step / (step_ms / 1000.0)},
                      {"gflops", flops_per_step / (step_ms / 1000.0) / 1e9},
                      {"phase_ms", {{"data", t_data}, {"forward", t_fwd}, {"backward", t_bwd}, {"optimizer", opt_ms},
                                    {"classifier", ws.classifier_ms}}},
                      {"skipped", !finite},
                      {"loss_scale", scale},
                      {"overflow", overflow},
                      {"rss_mb", rss_mb()},
                      {"peak_rss_mb", peak_rss_mb()},
                      {"cpu_pct", cpu_use.percent_since_last()},
                      {"power_w", watts ? nlohmann::json(watts->watts) : nlohmann::json()},
                      {"power_parts", power_parts},
                      {"kernels", kernels_json(be->take_kernel_timings())}});
    if (overflow) {
      tel.emit("overflow", {{"step", st.step}, {"loss_scale", st.loss_scale}, {"total", st.overflow_total}});
      char buf[160];
      std::snprintf(buf, sizeof buf, "step %lld: fp16 gradients overflowed at loss scale %g; update skipped, scale now %g",
                    (long long)st.step, scale, st.loss_scale);
      progress.message(buf);
    } else if (!finite) {
      tel.emit("nonfinite", {{"step", st.step}, {"consecutive", st.nonfinite_consecutive},
                             {"total", st.nonfinite_total}});
      progress.message("step " + std::to_string(st.step) + ": non-finite loss or gradient; update skipped (" +
                       std::to_string(st.nonfinite_consecutive) + " in a row)");
      if (st.nonfinite_consecutive >= o.max_nonfinite) {
        tel.emit("run_end", {{"step", st.step}, {"status", "nonfinite"}});
        progress.finish();
        fail("training stopped: " + std::to_string(st.nonfinite_consecutive) +
             " consecutive steps had a non-finite loss or gradient norm (limit --max-nonfinite " +
             std::to_string(o.max_nonfinite) + ")\nhint: lower --lr, or resume from an earlier checkpoint");
      }
    }
    if (budget_open && st.step >= budget_probe) {
      budget_open = false;
      const double elapsed = std::chrono::duration<double>(Clock::now() - t_train).count();
      const double per_step = elapsed / double(st.step - first_step);  // includes the slow first step
      // An evaluation is eval_batches forward passes, about a third of a step each.
      const double eval_per_step = have_val ? 0.4 * o.eval_batches * per_step / o.eval_every : 0.0;
      const int64_t fit = st.step + int64_t((o.time_budget_s - elapsed) / (per_step + eval_per_step));
      if (fit < o.steps) {
        o.steps = std::max(st.step + 1, fit);
        o.opt.total_steps = int(o.steps);
        opt.set_total_steps(int(o.steps));
        stop_step = o.stop_at > 0 ? std::min(o.stop_at, o.steps) : o.steps;
        const std::string j = o.to_json().dump(2) + "\n";
        write_file_atomic((fs::path(o.out) / "run.json").string(), j.data(), j.size());
        char buf[200];
        std::snprintf(buf, sizeof buf, "time budget %.0f s at %.0f ms/step: training %lld steps (the schedule ends there)",
                      o.time_budget_s, per_step * 1e3, (long long)o.steps);
        progress.message(buf);
        tel.emit("budget", {{"step", st.step}, {"time_budget_s", o.time_budget_s}, {"ms_per_step", per_step * 1e3},
                            {"steps", o.steps}});
      }
    }
    if (o.log_every > 0 && (st.step % o.log_every == 0 || st.step == stop_step))
      progress.update(st.step, o.steps, st.last_loss, lr, tokens_per_step / (ema_ms / 1000.0),
                      double(o.steps - st.step) * ema_ms / 1000.0,
                      (scaling.enabled ? "  scale " + fmt_scale(st.loss_scale) + "  skipped " +
                                             std::to_string(st.overflow_total)
                                       : std::string()) +
                          budget_note);

    // ---- evaluation and checkpoints ----
    bool improved = false;
    if (have_val && (st.step % o.eval_every == 0 || st.step == o.steps)) {
      const double val = evaluate(*be, m, ws, val_src, o);
      res.last_val = val;
      improved = val < st.best_val;
      if (improved) {
        st.best_val = val;
        st.best_step = st.step;
      }
      tel.emit("eval", {{"step", st.step}, {"val_loss", val}, {"best_val", st.best_val}});
      char buf[128];
      std::snprintf(buf, sizeof buf, "step %lld: val loss %.4f%s", (long long)st.step, val, improved ? " (best)" : "");
      progress.message(buf);
    } else if (!have_val && finite && o.save_best && loss < st.best_val) {
      improved = true;  // no validation data: the seed's rule, the training loss
      st.best_val = loss;
      st.best_step = st.step;
    }
    if (sample_tok && (st.step % o.sample_every == 0 || st.step == o.steps)) {
      // Outside the step's timing, like validation: one greedy and one sampled completion.
      const auto t_sample = Clock::now();
      const SamplingParams greedy{0.0f, 1.0f, 0}, warm{0.8f, 0.9f, 0};
      const std::string g = complete_text(*be, m, *sample_tok, o.sample_prompt, o.sample_tokens, greedy, o.seed);
      const std::string w = complete_text(*be, m, *sample_tok, o.sample_prompt, o.sample_tokens, warm, o.seed);
      tel.emit("sample", {{"step", st.step}, {"prompt", o.sample_prompt}, {"greedy", g}, {"sampled", w},
                          {"temperature", 0.8}, {"top_p", 0.9}, {"seed", o.seed}, {"ms", ms_since(t_sample)}});
    }
    const bool periodic = o.ckpt_every > 0 && st.step % o.ckpt_every == 0;
    const bool must = st.step == stop_step || g_stop_signals != 0;
    if (must || (periodic && (!o.save_best || improved)) || (improved && have_val)) {
      res.checkpoint = save_checkpoint(o.out, m, opt, st);
      prune_checkpoints(o.out, o.keep, st.best_step);
      tel.emit("checkpoint", {{"step", st.step}, {"path", res.checkpoint}, {"best_step", st.best_step}});
    }
  }
  progress.finish();
  res.step = st.step;
  res.last_loss = st.last_loss;
  res.interrupted = g_stop_signals != 0 || st.step < o.steps;
  if (res.checkpoint.empty()) {
    auto latest = latest_checkpoint(o.out);
    res.checkpoint = latest ? *latest : "";
  }
  tel.emit("run_end", {{"step", st.step}, {"status", res.interrupted ? "paused" : "done"}, {"loss", st.last_loss},
                       {"best_val", std::isfinite(st.best_val) ? nlohmann::json(st.best_val) : nlohmann::json()},
                       {"checkpoint", res.checkpoint}});
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  return res;
}

}  // namespace anetrain
