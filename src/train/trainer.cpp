#include "train/trainer.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <memory>

#include "core/error.h"
#include "core/signal_shield.h"
#include "core/warn.h"
#include "train/checkpoint.h"
#include "train/checkpoint_rule.h"
#include "train/run_control.h"
#include "train/session.h"

namespace anetrain {

namespace {

// First SIGINT/SIGTERM/SIGUSR1: finish the step, checkpoint, exit 0. Second SIGINT: leave at once —
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

// Taken on a catcher thread, never on a computing one (core/signal_shield.h: a signal handled
// inside oneDNN's f32 GEMM corrupts the heap). mpirun forwards SIGUSR1 to every rank (SIGINT and
// SIGTERM it turns into SIGTERM + SIGKILL a second later), so `kill -USR1 <mpirun>` is how a data
// parallel job pauses cleanly.
std::unique_ptr<SignalCatcher> catch_stop_signals() {
  g_stop_signals = 0;
  return std::make_unique<SignalCatcher>(std::initializer_list<int>{SIGINT, SIGTERM, SIGUSR1}, on_stop_signal);
}

}  // namespace

TrainResult train(TrainOptions o, const std::string& resume_dir) { return train(std::move(o), resume_dir, Parallel{}); }

TrainResult train(TrainOptions o, const std::string& resume_dir, const Parallel& par) {
  TrainSession session(std::move(o), resume_dir, /*verbose=*/true, par);
  const TrainOptions& opts = session.options();  // as the session resolved them (--time-budget may lower steps)
  TrainState& st = session.state();
  std::unique_ptr<SignalCatcher> stop_signals = catch_stop_signals();
  session.watch_stop(&g_stop_signals);
  // One process stops at the signal; ranks stop where they all agreed to (the step's exchange).
  bool stopping = false;
  auto stop_requested = [&] {
    return session.ranks() > 1 ? stopping : g_stop_signals != 0 || !session.telemetry_error().empty();
  };
  CheckpointRule rule{opts.ckpt_every, opts.save_best, session.has_validation()};
  TrainResult res;
  ControlInbox dashboard(opts.out);  // `anetrain dashboard --tui`'s g and p (train/run_control.h)
  while (st.step < session.stop_step() && !stop_requested()) {
    const StepResult r = session.step();
    stopping = r.stop;
    // ---- the dashboard's requests: a pause stops as a signal does, a sample is the scheduled one ----
    const ControlRequests asked = session.lead() ? dashboard.poll() : ControlRequests{};
    if (asked.pause) g_stop_signals.fetch_add(1);
    const bool sample_due = opts.sample_every > 0 && (st.step % opts.sample_every == 0 || st.step == opts.steps);
    if (asked.sample && !session.can_sample()) warn("a sample was asked for, but the run has no tokenizer (-z FILE)");
    if (asked.sample && session.can_sample() && !sample_due) session.sample();
    // ---- evaluation, samples and checkpoints, on the run's schedule ----
    bool val_improved = false;
    if (session.has_validation() && (st.step % opts.eval_every == 0 || st.step == opts.steps)) {
      const EvalReport e = session.evaluate();
      res.last_val = e.val_loss;
      val_improved = e.improved;
    }
    if (session.can_sample() && (st.step % opts.sample_every == 0 || st.step == opts.steps)) session.sample();
    const bool must = st.step == session.stop_step() || stop_requested();
    if (rule.should_save(st, r.applied, r.loss, val_improved, must)) {
      const std::string path = session.checkpoint();
      if (path.empty()) {
        if (session.lead()) rule.unsaved(st);
      } else {
        res.checkpoint = path;
      }
    }
  }
  res.step = st.step;
  res.last_loss = st.last_loss;
  res.interrupted = stop_requested() || st.step < opts.steps;
  if (res.checkpoint.empty() && session.lead()) {
    auto latest = latest_checkpoint(opts.out);
    res.checkpoint = latest ? *latest : "";
  }
  session.finish(res.interrupted, res.checkpoint);
  stop_signals.reset();  // from here a signal has its default action again
  if (!session.telemetry_error().empty())
    fail("training stopped at step " + std::to_string(res.step) + " because its telemetry could not be written (" +
         session.telemetry_error() + "); checkpoint " + (res.checkpoint.empty() ? "none" : res.checkpoint) +
         "\nhint: free space, then `anetrain train --resume " + opts.out + "`");
  return res;
}

}  // namespace anetrain
