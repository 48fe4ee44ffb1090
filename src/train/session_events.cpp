// What a training session tells the outside while it runs: its start, each step's event and
// progress line (from train_step's result), telemetry (and what happens when it cannot be
// written), warnings from below, the backend's program fallbacks, a disk that is filling up,
// run.json, and the --time-budget decision it records there.
#include <omp.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "contract/registry.h"
#include "core/error.h"
#include "train/session_impl.h"

namespace anetrain {

namespace {

// {"attention_fwd": {"calls", "eval_ms", "io_ms", "gflop", "model_gflop"}, ...} for backends with fused kernels.
nlohmann::json kernels_json(const std::vector<KernelTiming>& timings) {
  nlohmann::json j = nlohmann::json::object();
  for (const KernelTiming& t : timings)
    j[t.name] = {{"calls", t.calls}, {"eval_ms", t.eval_ms}, {"io_ms", t.io_ms}, {"gflop", t.flops / 1e9},
                 {"model_gflop", t.model_flops / 1e9}};
  return j;
}

std::string fmt_scale(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", s);
  return b;
}

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

}  // namespace

void TrainSession::Impl::announce_start(int trained_with) {
  const Model& m = *model_;
  const VocabCompaction* vc = o_.compact_vocab ? &compaction_ : nullptr;
  nlohmann::json hosts = nlohmann::json::array();
  for (int r = 0; r < ranks(); ++r) hosts.push_back(comm_->who(r));
  peak_ = matrix_peak(be_->caps());
  // The peak is the whole job's (rank 0's measured, times the ranks), as `gflops` is.
  emit("run_start", {{"resumed_from_step", st_.step}, {"options", o_.to_json()}, {"config", config_to_json(m.cfg)},
                     {"params", m.table.total()}, {"flops_per_step", flops_per_step_},
                     {"compact_vocab", vc ? vc->size() : 0}, {"backend", be_->name()},
                     {"precision", o_.precision}, {"gemm_isa", matrix_isa()},
                     {"threads", omp_get_max_threads()}, {"cpu", cpu_model_name()}, {"git_commit", git_commit()},
                     {"matrix_peak_gflops", peak_.gflops * ranks()},
                     {"matrix_peak_on", peak_.accelerator ? "accelerator" : "cpu"}, {"matrix_peak_source", peak_.source},
                     {"power_source", power_->description()}, {"world_size", ranks()}, {"ranks", hosts},
                     {"allreduce_bytes_per_step", sync_ ? sync_->bytes() : 0}});
  for (const std::string& w : pending_warnings_) emit("warning", {{"step", st_.step}, {"text", w}});
  pending_warnings_.clear();
  report_fallbacks();
  report_compiles(false);  // the programs prepare_training compiled before the telemetry opened
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
  if (policy_.scaling.enabled) {
    std::snprintf(line, sizeof line, "%s computes in fp16: dynamic loss scale %g (doubles after %d clean steps)",
                  be_->name().c_str(), st_.loss_scale, policy_.scaling.window);
    message(line);
  }
}

void TrainSession::Impl::report_step(const StepResult& r, double step_ms) {
  ema_ms_ = ema_ms_ == 0 ? step_ms : 0.9 * ema_ms_ + 0.1 * step_ms;
  empty_windows_total_ += r.empty_windows;
  const auto watts = power_->since_last();
  nlohmann::json power_parts = nlohmann::json::object();
  if (watts)
    for (const auto& [name, w] : watts->parts) power_parts[name] = w;
  const std::vector<KernelTiming> kernels = take_kernel_timings(be_->caps());
  for (const KernelTiming& k : kernels) {
    efficiency_.compute_ms += k.eval_ms;
    efficiency_.staging_ms += k.io_ms;
    efficiency_.accelerator_flops += k.flops;
    efficiency_.accelerator_model_flops += k.model_flops;
  }
  double step_accelerator_flops = 0;
  for (const KernelTiming& k : kernels) step_accelerator_flops += k.flops;
  efficiency_.steps += 1;
  efficiency_.step_ms += step_ms;
  // The classifier saw only the counted rows of a masked step (counted_targets sums every rank's).
  const double step_flops = r.counted_targets < 0 ? flops_per_step_
                                                  : flops_per_step_ - classifier_flops_per_row_ *
                                                                          (tokens_per_step_ - double(r.counted_targets));
  efficiency_.model_flops += step_flops / ranks();  // this rank's share, as the kernels' are
  nlohmann::ordered_json phases = {{"data", r.data_ms}, {"forward", r.forward_ms}, {"backward", r.backward_ms},
                                   {"optimizer", r.optimizer_ms}, {"classifier", r.classifier_ms}};
  if (sync_) phases["allreduce"] = r.allreduce_ms;
  nlohmann::ordered_json event = {{"step", st_.step},
                                  {"tokens", st_.tokens_seen},
                                  {"loss", finite_or_null(r.loss)},
                                  {"lr", r.lr},
                                  {"grad_norm", finite_or_null(r.grad_norm)},
                                  {"ms", step_ms},
                                  {"tokens_per_s", tokens_per_step_ / (step_ms / 1000.0)},
                                  {"gflops", step_flops / (step_ms / 1000.0) / 1e9},
                                  {"phase_ms", phases},
                                  {"skipped", !r.applied},
                                  {"loss_scale", r.loss_scale},
                                  {"overflow", r.overflow},
                                  {"rss_mb", rss_mb()},
                                  {"peak_rss_mb", peak_rss_mb()},
                                  {"cpu_pct", cpu_use_.percent_since_last()},
                                  {"power_w", watts ? nlohmann::json(watts->watts) : nlohmann::json()},
                                  {"power_parts", power_parts},
                                  {"kernels", kernels_json(kernels)}};
  // The programs' rate this step: what the accelerator's utilisation (run_start's
  // matrix_peak_on "accelerator") compares with its peak.
  if (!kernels.empty()) event["accelerator_gflops"] = step_accelerator_flops / (step_ms / 1000.0) / 1e9;
  if (r.counted_targets >= 0) {  // loss masks: what counted, and the windows that added nothing
    event["counted_targets"] = r.counted_targets;
    event["empty_windows"] = r.empty_windows;
    event["empty_micro_batches"] = r.empty_micro_batches;
    event["no_targets"] = r.no_targets;
  }
  if (sync_) {  // per rank: its forward+backward and all-reduce wait
    nlohmann::ordered_json per_rank = nlohmann::ordered_json::array();
    for (size_t k = 0; k < r.ranks.size(); ++k)
      per_rank.push_back(
          {{"rank", k}, {"compute_ms", r.ranks[k].compute_ms}, {"allreduce_ms", r.ranks[k].allreduce_ms}});
    event["ranks"] = per_rank;
  }
  emit("step", std::move(event));
  if (r.overflow) {
    emit("overflow", {{"step", st_.step}, {"loss_scale", st_.loss_scale}, {"total", st_.overflow_total}});
    char buf[160];
    std::snprintf(buf, sizeof buf, "step %lld: fp16 gradients overflowed at loss scale %g; update skipped, scale now %g",
                  (long long)st_.step, r.loss_scale, st_.loss_scale);
    message(buf);
  } else if (r.no_targets) {
    message("step " + std::to_string(st_.step) + ": no target in its windows counts toward the loss; update skipped");
  } else if (r.nonfinite) {
    emit("nonfinite", {{"step", st_.step}, {"consecutive", st_.nonfinite_consecutive}, {"total", st_.nonfinite_total}});
    message("step " + std::to_string(st_.step) + ": non-finite loss or gradient; update skipped (" +
            std::to_string(st_.nonfinite_consecutive) + " in a row)");
    if (r.nonfinite_limit) {
      report_efficiency();  // a run that stops here ends as every run does: the report, then run_end
      emit("run_end", {{"step", st_.step}, {"status", "nonfinite"}});
      finished_ = true;
      if (progress_) progress_->finish();
      fail(nonfinite_limit_message(st_, o_.max_nonfinite) + "\nhint: lower --lr, or resume from an earlier checkpoint");
    }
  }
  report_fallbacks();
  report_compiles(true);
  watch_disk_space();
  if (st_.step == first_step_ + 1) t_first_step_done_ = Clock::now();
  if (budget_open_ && st_.step >= budget_probe_) decide_budget();
  std::string ranks_note;
  if (sync_ && !r.ranks.empty()) {
    // The slowest rank sets the pace; rank 0's wait is the all-reduce its backward pass did not hide.
    size_t slowest = 0;
    for (size_t k = 1; k < r.ranks.size(); ++k)
      if (r.ranks[k].compute_ms > r.ranks[slowest].compute_ms) slowest = k;
    char buf[96];
    std::snprintf(buf, sizeof buf, "  allreduce %.0f ms  slowest rank %zu %.0f ms", r.allreduce_ms, slowest,
                  r.ranks[slowest].compute_ms);
    ranks_note = buf;
  }
  if (progress_ && o_.log_every > 0 && (st_.step % o_.log_every == 0 || st_.step == stop_step_))
    progress_->update(st_.step, o_.steps, st_.last_loss, r.lr, tokens_per_step_ / (ema_ms_ / 1000.0),
                      double(o_.steps - st_.step) * ema_ms_ / 1000.0,
                      (policy_.scaling.enabled
                           ? "  scale " + fmt_scale(st_.loss_scale) + "  skipped " + std::to_string(st_.overflow_total)
                           : std::string()) +
                          (fallbacks_ ? "  ane fallbacks " + std::to_string(fallbacks_) : std::string()) +
                          (empty_windows_total_ ? "  empty windows " + std::to_string(empty_windows_total_) : std::string()) +
                          ranks_note +
                          budget_note_);
}

void TrainSession::Impl::decide_budget() {
  budget_open_ = false;
  const double elapsed = std::chrono::duration<double>(Clock::now() - t_train_).count();
  // The pace after the first step (its one-off set-up is in `elapsed`, not in the pace), where
  // there were steps after it.
  const int64_t steps = st_.step - first_step_;
  const bool after_first = steps >= 3;
  const double paced_s = after_first ? std::chrono::duration<double>(Clock::now() - t_first_step_done_).count() : elapsed;
  const double per_step = paced_s / double(after_first ? steps - 1 : steps);
  // An evaluation is eval_batches forward passes, about a third of a step each.
  const double eval_per_step = have_val_ ? 0.4 * o_.eval_batches * per_step / o_.eval_every : 0.0;
  int64_t fit = st_.step + int64_t((o_.time_budget_s - elapsed) / (per_step + eval_per_step));
  comm_->broadcast(&fit, sizeof fit, "the time-budget decision");  // rank 0's clock decides for all
  if (fit >= o_.steps) return;
  o_.steps = std::max(st_.step + 1, fit);
  o_.opt.total_steps = int(o_.steps);
  opt_->set_total_steps(int(o_.steps));
  stop_step_ = o_.stop_at > 0 ? std::min(o_.stop_at, o_.steps) : o_.steps;
  if (lead()) save_settings();
  char buf[200];
  std::snprintf(buf, sizeof buf, "time budget %.0f s at %.0f ms/step: training %lld steps (the schedule ends there)",
                o_.time_budget_s, per_step * 1e3, (long long)o_.steps);
  message(buf);
  emit("budget", {{"step", st_.step}, {"time_budget_s", o_.time_budget_s}, {"ms_per_step", per_step * 1e3},
                        {"steps", o_.steps}});
}

void TrainSession::Impl::emit(const char* event, nlohmann::ordered_json fields) {
  if (!tel_ || !telemetry_error_.empty()) return;
  try {
    tel_->emit(event, std::move(fields));
  } catch (const Error& e) {
    // A full disk must not let a run go on unrecorded: say so loudly, then stop at this step
    // (with a checkpoint, if the disk still takes one).
    telemetry_error_ = e.what();
    if (!verbose_) return;  // a library caller hears of it from the step's result
    if (progress_) progress_->finish();
    std::fprintf(stderr, "\nanetrain: error: telemetry could not be written: %s\nanetrain: stopping after this step\n",
                 telemetry_error_.c_str());
  }
}

void TrainSession::Impl::save_settings() {
  // run.json outlives the directory the run started from: paths in it are absolute.
  TrainOptions stored = o_;
  stored.make_paths_absolute();
  run_->write_settings(stored.to_json());
}

void TrainSession::Impl::watch_disk_space() {
  if (!lead()) return;
  struct statvfs fs_info {};
  if (::statvfs(o_.out.c_str(), &fs_info) != 0) return;
  const double free_bytes = double(fs_info.f_bavail) * double(fs_info.f_frsize);
  // Room for two checkpoints (weights and both AdamW moments, one being written while the last
  // is kept) and some telemetry: below it, say so while a warning can still be written — it
  // reaches the console and, as a telemetry event, the dashboard.
  const double need = std::max(64e6, 2.0 * 12.0 * double(model_->table.total()));
  if (free_bytes >= need) {
    disk_warned_ = false;
    return;
  }
  if (disk_warned_) return;
  disk_warned_ = true;
  char buf[200];
  std::snprintf(buf, sizeof buf, "the disk holding %s has %.1f MB free, less than %.0f MB (two checkpoints): training "
                "stops at the first write that fails", o_.out.c_str(), free_bytes / 1e6, need / 1e6);
  warn(buf);
}

void TrainSession::Impl::report_fallbacks() {
  for (const ProgramFallback& f : take_fallbacks(be_->caps())) {
    ++fallbacks_;
    emit("ane_fallback", {{"step", st_.step}, {"program", f.program}, {"kernel", f.kernel}, {"at", f.step},
                          {"reason", f.reason}, {"kept", f.kept}, {"total", fallbacks_}});
    warn(be_->name() + " rejected program " + f.program + " at " + f.step + ": " + f.reason + "; its stage (" +
         f.kernel + ") runs on the CPU" + (f.kept.empty() ? "" : "; the program is kept in " + f.kept));
  }
}

void TrainSession::Impl::report_compiles(bool in_step) {
  const std::vector<ProgramCompile> compiled = take_compiles(be_->caps());
  if (compiled.empty()) return;
  nlohmann::ordered_json programs = nlohmann::ordered_json::array();
  double compile_ms = 0, load_ms = 0;
  for (const ProgramCompile& c : compiled) {
    programs.push_back({{"program", c.program}, {"kernel", c.kernel}, {"compile_ms", c.compile_ms}, {"load_ms", c.load_ms}});
    compile_ms += c.compile_ms;
    load_ms += c.load_ms;
  }
  efficiency_.compiles += int64_t(compiled.size());
  efficiency_.compile_ms += compile_ms + load_ms;
  if (in_step) efficiency_.compile_in_steps_ms += compile_ms + load_ms;
  emit("programs", {{"step", st_.step}, {"compiles", compiled.size()}, {"compile_ms", compile_ms}, {"load_ms", load_ms},
                    {"total_compiles", efficiency_.compiles}, {"programs", std::move(programs)}});
}

void TrainSession::Impl::report_efficiency() {
  report_compiles(false);  // programs a sample compiled after the last step
  efficiency_.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_open_).count();
  efficiency_.peak_gflops = peak_.gflops;
  efficiency_.peak_is_accelerator = peak_.accelerator;
  efficiency_.peak_source = peak_.source;
  const EfficiencyReport report = efficiency_report(efficiency_);
  nlohmann::ordered_json fields = {{"step", st_.step}};
  const nlohmann::ordered_json summary = efficiency_json(report);
  for (const auto& [key, value] : summary.items()) fields[key] = value;
  emit("efficiency", std::move(fields));
  if (verbose_ && lead())
    for (const std::string& line : efficiency_lines(report)) message(line);
}

WarningScope TrainSession::Impl::warnings_here() {
  return WarningScope([this](const std::string& text) {
    if (verbose_) {
      if (progress_) progress_->finish();  // the warning starts a line of its own
      std::fprintf(stderr, "anetrain: warning: %s\n", text.c_str());
    }
    if (tel_) emit("warning", {{"step", st_.step}, {"text", text}});
    else pending_warnings_.push_back(text);  // before the telemetry file is open: written after run_start
  });
}

}  // namespace anetrain
