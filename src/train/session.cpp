#include "train/session.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <type_traits>
#include <vector>

#include "backends/cpu/gemm.h"
#include "contract/registry.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/warn.h"
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

TrainSession::TrainSession(TrainOptions o, const std::string& resume_dir, bool verbose, Parallel par)
    : o_(std::move(o)), verbose_(verbose), resuming_(!resume_dir.empty()), overlap_(par.overlap) {
  const WarningScope warnings = warnings_here();
  if (!par.comm) own_comm_ = std::make_unique<SoloComm>();
  comm_ = par.comm ? par.comm : own_comm_.get();
  if (ranks() > 1) share_options();
  if (o_.out.empty()) fail("train: --out RUN_DIR is required");
  if (o_.data.empty()) fail("train: no training data (--data SHARD...)");
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
  if (threads > 0) {
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
  }
  if (const BackendEntry* e = find_backend(o_.backend); e && !e->users_ask.empty())
    fail("train: use " + std::string(e->users_ask) + " (" + o_.backend + " is the tests' name for it)");
  be_ = make_backend(o_.backend, parse_precision(o_.precision));

  // ---- model, data, optimizer ----
  std::optional<std::string> resume_from;
  if (resuming_ && lead()) {
    resume_from = latest_checkpoint(o_.out, run_->checkpoints());
    if (!resume_from) fail(o_.out + ": no complete checkpoint to resume from");
  }
  if (lead()) model_ = resuming_ ? load_model_checkpoint(*resume_from) : load_model(o_.model, o_.seed).model;
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
                                    flash_attention_for(*be_, m.cfg, o_.batch, o_.seq));
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
      run_->write_settings(run_->settings());  // the list, with any checkpoint adopted on opening
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

  // ---- telemetry ----
  power_ = open_power_meter();  // RAPL (Linux) or powermetrics (macOS), read once per step
  if (lead()) tel_ = std::make_unique<JsonlWriter>((fs::path(o_.out) / "telemetry.jsonl").string());
  ModelConfig flop_cfg = m.cfg;
  if (vc) flop_cfg.vocab_size = vc->size();
  tokens_per_step_ = double(o_.batch) * o_.seq * o_.accum * ranks();
  flops_per_step_ = flops_per_token(flop_cfg, o_.seq).training() * tokens_per_step_;
  nlohmann::json hosts = nlohmann::json::array();
  for (int r = 0; r < ranks(); ++r) hosts.push_back(comm_->who(r));
  // The peak is the whole job's (rank 0's measured, times the ranks), as `gflops` is.
  emit("run_start", {{"resumed_from_step", st_.step}, {"options", o_.to_json()}, {"config", config_to_json(m.cfg)},
                           {"params", m.table.total()}, {"flops_per_step", flops_per_step_},
                           {"compact_vocab", vc ? vc->size() : 0}, {"backend", be_->name()},
                           {"precision", o_.precision}, {"gemm_isa", gemm_isa()},
                           {"threads", omp_get_max_threads()}, {"cpu", cpu_model_name()}, {"git_commit", git_commit()},
                           {"matrix_peak_gflops", matrix_peak_gflops(be_->caps()) * ranks()}, {"power_source", power_->description()},
                     {"world_size", ranks()}, {"ranks", hosts},
                     {"allreduce_bytes_per_step", sync_ ? sync_->bytes() : 0}});
  for (const std::string& w : pending_warnings_) emit("warning", {{"step", st_.step}, {"text", w}});
  pending_warnings_.clear();
  report_fallbacks();
  if (verbose_ && lead()) progress_ = std::make_unique<ProgressLine>();
  char line[512];
  std::snprintf(line, sizeof line,
                "%s %s: %.2fM params, %d×%d tokens × %d accum per step, %s backend, %s, %d threads%s",
                resuming_ ? "resuming" : "training", o_.model.c_str(), m.table.total() / 1e6, o_.batch, o_.seq,
                o_.accum, o_.backend.c_str(), o_.precision.c_str(), omp_get_max_threads(),
                vc ? (", vocab compacted to " + std::to_string(vc->size())).c_str() : "");
  message(line);
  if (ranks() > 1) {
    std::snprintf(line, sizeof line, "data parallel over %d ranks: global batch %d × %d × %d accum = %.0f tokens per step%s",
                  ranks(), ranks(), o_.batch, o_.accum, tokens_per_step_, overlap_ ? "" : " (gradient sums not overlapped)");
    message(line);
  }
  if (resuming_) message("resumed from step " + std::to_string(st_.step) + " of " + o_.out);
  if (resuming_ && trained_with != ranks())
    message("the run trained on " + std::to_string(trained_with) + " rank(s) and now on " + std::to_string(ranks()) +
            ": each step now sees " + std::to_string(ranks()) + " × " + std::to_string(o_.batch) + " × " +
            std::to_string(o_.accum) + " windows (was " + std::to_string(trained_with) + " × …); the learning-rate "
            "schedule and the window sequence go on from where they were");

  scaling_.enabled = be_->caps().numerics.fp16;
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
  const WarningScope warnings = warnings_here();
  Model& m = *model_;
  Workspace& ws = *ws_;
  const auto t_step = Clock::now();
  // CPU use, power and kernel timings cover the step itself, not the evaluation or sample
  // (which decodes through the same kernels) before it.
  cpu_use_.percent_since_last();
  power_->since_last();
  take_kernel_timings(be_->caps());
  double t_data = 0, t_fwd = 0, t_bwd = 0;
  ws.classifier_ms = 0;
  m.zero_grads();
  double loss = 0;
  const double scale = st_.loss_scale;
  // The step's ranks × accum micro-batches are drawn in one global order; rank r trains on
  // micro-batches [r·accum, (r+1)·accum) and passes over the others' windows. So N ranks see
  // exactly the windows one process with accum N·accum would, in the same order.
  const int micro = o_.accum * ranks();
  for (int g = 0; g < micro; ++g) {
    if (g / o_.accum != comm_->rank()) {
      sampler_->skip(o_.batch);
      continue;
    }
    auto t = Clock::now();
    sampler_->next_batch(o_.batch, ws.inputs.data(), ws.targets.data());
    t_data += ms_since(t);
    t = Clock::now();
    loss += forward(*be_, m, ws) / micro;
    t_fwd += ms_since(t);
    t = Clock::now();
    GradsFinal on_final;
    if (sync_ && g % o_.accum == o_.accum - 1) on_final = [&](int part) { sync_->part_final(m, part); };
    else if (sync_) on_final = [&](int) { sync_->progress(); };
    backward(*be_, m, ws, float(scale / micro), on_final);
    t_bwd += ms_since(t);
  }
  const int64_t step_no = st_.step + 1;
  const double sync_ms = sync_ ? sync_->finish(m, "the gradient sum of step " + std::to_string(step_no)) : 0.0;
  if (std::find(o_.inject_nan.begin(), o_.inject_nan.end(), step_no) != o_.inject_nan.end()) loss = NAN;
  if (std::find(o_.inject_overflow.begin(), o_.inject_overflow.end(), step_no) != o_.inject_overflow.end())
    m.grads[0] = INFINITY;
  auto t_opt = Clock::now();
  double scaled_norm = grad_norm(m);
  bool stop = (stop_flag_ && stop_flag_->load() != 0) || !telemetry_error_.empty();
  nlohmann::ordered_json per_rank = nlohmann::ordered_json::array();
  if (ranks() > 1) {
    // One exchange per step: the losses to sum, whether any rank was asked to stop, timings for
    // rank 0's telemetry, and rank 0's gradient norm — which every rank then uses, so that the
    // clipping (and with it the update) is identical even where thread counts differ.
    constexpr int kFields = 5;
    const double mine[kFields] = {loss, stop ? 1.0 : 0.0, t_fwd + t_bwd, sync_ms, scaled_norm};
    std::vector<double> all(size_t(kFields) * size_t(ranks()));
    comm_->allgather(mine, kFields, all.data(), "the loss exchange of step " + std::to_string(step_no));
    loss = 0;
    for (int r = 0; r < ranks(); ++r) {
      const double* f = &all[size_t(r) * kFields];
      loss += f[0];
      stop |= f[1] != 0;
      per_rank.push_back({{"rank", r}, {"compute_ms", f[2]}, {"allreduce_ms", f[3]}});
    }
    scaled_norm = all[4];
  }
  const StepOutcome outcome = end_loss_scaled_step(scaling_, st_, loss, scaled_norm);
  const bool finite = outcome == StepOutcome::applied;
  const bool overflow = outcome == StepOutcome::overflow;
  // Unscaled before clipping, so the optimizer sees what an fp32 backend would give it.
  const double norm = scaled_norm / scale;
  if (finite) {
    if (scale != 1.0) scale_grads(m, 1.0 / scale);
    opt_->step_with_norm(m, norm, *be_);
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
  nlohmann::ordered_json phases = {{"data", t_data}, {"forward", t_fwd}, {"backward", t_bwd}, {"optimizer", opt_ms},
                           {"classifier", ws.classifier_ms}};
  if (sync_) phases["allreduce"] = sync_ms;
  nlohmann::ordered_json event = {{"step", st_.step},
                      {"tokens", st_.tokens_seen},
                      {"loss", std::isfinite(loss) ? nlohmann::json(loss) : nlohmann::json()},
                      {"lr", lr},
                      {"grad_norm", std::isfinite(norm) ? nlohmann::json(norm) : nlohmann::json()},
                      {"ms", step_ms},
                      {"tokens_per_s", tokens_per_step_ / (step_ms / 1000.0)},
                      {"gflops", flops_per_step_ / (step_ms / 1000.0) / 1e9},
                      {"phase_ms", phases},
                      {"skipped", !finite},
                      {"loss_scale", scale},
                      {"overflow", overflow},
                      {"rss_mb", rss_mb()},
                      {"peak_rss_mb", peak_rss_mb()},
                      {"cpu_pct", cpu_use_.percent_since_last()},
                      {"power_w", watts ? nlohmann::json(watts->watts) : nlohmann::json()},
                      {"power_parts", power_parts},
                      {"kernels", kernels_json(take_kernel_timings(be_->caps()))}};
  if (sync_) event["ranks"] = per_rank;  // per rank: its forward+backward and all-reduce wait
  emit("step", std::move(event));
  if (overflow) {
    emit("overflow", {{"step", st_.step}, {"loss_scale", st_.loss_scale}, {"total", st_.overflow_total}});
    char buf[160];
    std::snprintf(buf, sizeof buf, "step %lld: fp16 gradients overflowed at loss scale %g; update skipped, scale now %g",
                  (long long)st_.step, scale, st_.loss_scale);
    message(buf);
  } else if (!finite) {
    emit("nonfinite", {{"step", st_.step}, {"consecutive", st_.nonfinite_consecutive},
                             {"total", st_.nonfinite_total}});
    message("step " + std::to_string(st_.step) + ": non-finite loss or gradient; update skipped (" +
            std::to_string(st_.nonfinite_consecutive) + " in a row)");
    if (st_.nonfinite_consecutive >= o_.max_nonfinite) {
      emit("run_end", {{"step", st_.step}, {"status", "nonfinite"}});
      finished_ = true;
      if (progress_) progress_->finish();
      fail("training stopped: " + std::to_string(st_.nonfinite_consecutive) +
           " consecutive steps had a non-finite loss or gradient norm (limit --max-nonfinite " +
           std::to_string(o_.max_nonfinite) + ")\nhint: lower --lr, or resume from an earlier checkpoint");
    }
  }
  report_fallbacks();
  watch_disk_space();
  if (budget_open_ && st_.step >= budget_probe_) decide_budget();
  std::string ranks_note;
  if (sync_ && !per_rank.empty()) {
    // The slowest rank sets the pace; rank 0's wait is the all-reduce its backward pass did not hide.
    int slowest = 0;
    for (int r = 1; r < ranks(); ++r)
      if (per_rank[size_t(r)]["compute_ms"].get<double>() > per_rank[size_t(slowest)]["compute_ms"].get<double>())
        slowest = r;
    char buf[96];
    std::snprintf(buf, sizeof buf, "  allreduce %.0f ms  slowest rank %d %.0f ms", sync_ms, slowest,
                  per_rank[size_t(slowest)]["compute_ms"].get<double>());
    ranks_note = buf;
  }
  if (progress_ && o_.log_every > 0 && (st_.step % o_.log_every == 0 || st_.step == stop_step_))
    progress_->update(st_.step, o_.steps, st_.last_loss, lr, tokens_per_step_ / (ema_ms_ / 1000.0),
                      double(o_.steps - st_.step) * ema_ms_ / 1000.0,
                      (scaling_.enabled ? "  scale " + fmt_scale(st_.loss_scale) + "  skipped " +
                                              std::to_string(st_.overflow_total)
                                        : std::string()) +
                          (fallbacks_ ? "  ane fallbacks " + std::to_string(fallbacks_) : std::string()) +
                          ranks_note + budget_note_);
  StepReport r;
  r.step = st_.step;
  r.loss = loss;
  r.grad_norm = norm;
  r.lr = lr;
  r.ms = step_ms;
  r.applied = finite;
  r.overflow = overflow;
  r.stop = stop;
  return r;
}

EvalReport TrainSession::evaluate() {
  const WarningScope warnings = warnings_here();
  if (!have_val_) fail("train: no validation data (--val-data or --val-frac, with --eval-every > 0)");
  double sum = 0;
  for (int k = comm_->rank(); k < o_.eval_batches; k += ranks()) {  // the ranks share the batches
    validation_batch(val_src_, o_.seq, o_.batch, k, o_.eval_batches, ws_->inputs.data(), ws_->targets.data());
    sum += forward(*be_, *model_, *ws_);
  }
  if (ranks() > 1) {
    std::vector<double> sums(static_cast<size_t>(ranks()));
    comm_->allgather(&sum, 1, sums.data(), "the evaluation at step " + std::to_string(st_.step));
    sum = 0;
    for (double v : sums) sum += v;
  }
  EvalReport r;
  r.val_loss = sum / o_.eval_batches;
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

void TrainSession::sample() {
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

std::string TrainSession::checkpoint() {
  const WarningScope warnings = warnings_here();
  if (!lead()) return "";  // every rank holds the same weights; rank 0 alone writes them
  const std::string path = save_checkpoint(*run_, *model_, *opt_, st_);
  if (path.empty()) return path;  // a folder of someone else's has that step's name (warned)
  prune_checkpoints(*run_, o_.keep, st_.best_step);
  emit("checkpoint", {{"step", st_.step}, {"path", path}, {"best_step", st_.best_step}});
  return path;
}

void TrainSession::finish(bool interrupted, const std::string& last_checkpoint) {
  const WarningScope warnings = warnings_here();
  if (progress_) progress_->finish();
  if (finished_) return;  // ended already (the non-finite limit wrote its own run_end)
  finished_ = true;
  emit("run_end", {{"step", st_.step}, {"status", interrupted ? "paused" : "done"}, {"loss", st_.last_loss},
                         {"best_val", std::isfinite(st_.best_val) ? nlohmann::json(st_.best_val) : nlohmann::json()},
                         {"checkpoint", last_checkpoint}});
}

}  // namespace anetrain
