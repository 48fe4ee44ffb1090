// What a training session tells the outside while it runs: telemetry events (and what happens
// when they cannot be written), warnings from below, the backend's program fallbacks, a disk that
// is filling up, run.json, and the --time-budget decision it records there.
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "train/session.h"

namespace anetrain {

namespace fs = std::filesystem;

void TrainSession::decide_budget() {
  budget_open_ = false;
  const double elapsed = std::chrono::duration<double>(Clock::now() - t_train_).count();
  const double per_step = elapsed / double(st_.step - first_step_);  // includes the slow first step
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

void TrainSession::emit(const char* event, nlohmann::ordered_json fields) {
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

void TrainSession::save_settings() {
  // run.json outlives the directory the run started from: paths in it are absolute.
  TrainOptions stored = o_;
  stored.make_paths_absolute();
  run_->write_settings(stored.to_json());
}

void TrainSession::watch_disk_space() {
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

void TrainSession::report_fallbacks() {
  for (const ProgramFallback& f : take_fallbacks(be_->caps())) {
    ++fallbacks_;
    emit("ane_fallback", {{"step", st_.step}, {"program", f.program}, {"kernel", f.kernel}, {"at", f.step},
                          {"reason", f.reason}, {"kept", f.kept}, {"total", fallbacks_}});
    warn(be_->name() + " rejected program " + f.program + " at " + f.step + ": " + f.reason + "; its stage (" +
         f.kernel + ") runs on the CPU" + (f.kept.empty() ? "" : "; the program is kept in " + f.kept));
  }
}

WarningScope TrainSession::warnings_here() {
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
