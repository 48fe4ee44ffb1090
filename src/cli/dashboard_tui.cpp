#include "cli/dashboard_tui.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>

#include "cli/dashboard_trainer.h"
#include "core/error.h"
#include "core/terminal_text.h"
#include "telemetry/run_watch.h"
#include "telemetry/tui.h"
#include "telemetry/tui_keys.h"
#include "train/run_control.h"

namespace anetrain {

namespace {

volatile std::sig_atomic_t g_interrupt = 0, g_terminate = 0;
void on_interrupt(int) { g_interrupt = 1; }
void on_terminate(int) { g_terminate = 1; }
void on_resize(int) {}  // only to interrupt poll(): the loop redraws at the new size

// Raw keys, the alternate screen and a hidden cursor for the life of the object.
class TerminalSession {
 public:
  TerminalSession() {
    if (::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~tcflag_t(ICANON | ECHO);
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
      restore_ = true;
    }
    std::fputs("\x1b[?1049h\x1b[?25l", stdout);
    std::fflush(stdout);
  }
  ~TerminalSession() {
    std::fputs("\x1b[?25h\x1b[?1049l", stdout);
    std::fflush(stdout);
    if (restore_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }

 private:
  termios saved_{};
  bool restore_ = false;
};

// What the keys do to the run; the view's state lives in run_tui.
class RunControls {
 public:
  explicit RunControls(std::string run) : run_(std::move(run)) {}

  void launch(const std::vector<std::string>& args) {
    child_ = std::make_unique<LaunchedTrainer>(args, run_);
    status_ = "started anetrain train (pid " + std::to_string(child_->pid()) + "; its output goes to " + run_ + "/train.log)";
  }
  bool child_running() { return child_ && child_->running(); }
  // A trainer on the run, the dashboard's own child reaped first (a zombie still answers kill 0).
  std::optional<long> trainer() {
    child_running();
    return running_trainer(run_);
  }
  void sample(const RunView& v) {
    const auto pid = trainer();
    if (!pid) return say("no trainer is running on " + run_ + " (p or r starts one)");
    const auto& opt = v.start.is_object() && v.start.contains("options") ? v.start["options"] : nlohmann::json();
    if (!opt.is_object() || opt.value("sample_every", 0) <= 0)
      return say("this run cannot sample: it was started without --sample-every N -z TOKENIZER");
    queue_.push_back({ControlAction::sample, *pid});
    say("sample asked of trainer pid " + std::to_string(*pid) + ": it follows the current step");
  }
  void pause_or_resume() {
    if (const auto pid = trainer()) {
      queue_.push_back({ControlAction::pause, *pid});
      return say("pause asked: trainer pid " + std::to_string(*pid) + " checkpoints after this step and stops (p resumes)");
    }
    resume("resuming");
  }
  void restart() {
    if (const auto pid = trainer()) {
      queue_.push_back({ControlAction::pause, *pid});
      restart_ = true;
      return say("restart: trainer pid " + std::to_string(*pid) + " checkpoints and stops, then resumes from that checkpoint");
    }
    resume("restarting from the last checkpoint");
  }
  // Once per refresh: requests go out one at a time, a restart resumes once the trainer is gone.
  void tick() {
    if (!queue_.empty() && !control_pending(run_)) {
      try {
        send_control(run_, queue_.front().first, queue_.front().second);
      } catch (const Error& e) {
        say(e.what());
      }
      queue_.pop_front();
    }
    if (child_) {
      for (auto& line : child_->take_lines()) {
        tail_.push_back(std::move(line));
        if (tail_.size() > 20) tail_.pop_front();
      }
      if (!child_->running() && !reported_exit_) {
        reported_exit_ = true;
        say("the trainer exited (status " + std::to_string(child_->exit_code()) + ")" +
            (child_->exit_code() != 0 && !tail_.empty() ? ": " + tail_.back() : std::string()));
      }
    }
    if (restart_ && queue_.empty() && !control_pending(run_) && !trainer()) {
      restart_ = false;
      resume("restarting from the last checkpoint");
    }
  }
  bool leave_needs_asking() { return child_running(); }
  void stop_child() {
    if (const auto pid = trainer(); pid && child_ && *pid == long(child_->pid())) queue_.push_back({ControlAction::pause, *pid});
    else if (child_) ::kill(child_->pid(), SIGINT);  // still starting: its own signal handling checkpoints
    stopping_ = true;
    say("stopping the trainer: it checkpoints, then the dashboard quits");
  }
  bool stopped() { return stopping_ && !child_running(); }
  void leave() {
    if (child_ && child_->running()) child_->hand_off();
  }
  // After the terminal is back: a trainer that failed says why.
  void report() const {
    if (!child_ || child_->exit_code() <= 0) return;
    std::fprintf(stderr, "anetrain dashboard: the trainer exited with status %d; its last lines:\n", child_->exit_code());
    for (const auto& l : tail_) std::fprintf(stderr, "  %s\n", terminal_safe(l).c_str());
  }
  void say(const std::string& s) { status_ = s; }
  const std::string& status() const { return status_; }

 private:
  void resume(const char* what) {
    if (child_running()) return say("the trainer this dashboard started is still starting; try again in a moment");
    try {
      launch({"--resume", run_});
      reported_exit_ = false;
      say(std::string(what) + ": anetrain train --resume " + run_ + " (pid " + std::to_string(child_->pid()) + ")");
    } catch (const Error& e) {
      say(e.what());
    }
  }
  std::string run_, status_;
  std::unique_ptr<LaunchedTrainer> child_;
  std::deque<std::pair<ControlAction, long>> queue_;
  std::deque<std::string> tail_;
  bool restart_ = false, stopping_ = false, reported_exit_ = false;
};

void install_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  ::sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = on_terminate;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  sa.sa_handler = on_resize;
  ::sigaction(SIGWINCH, &sa, nullptr);
}

}  // namespace

std::string run_dir_of_train_args(const std::vector<std::string>& args) {
  std::string out, resume;
  for (size_t i = 0; i < args.size(); ++i) {
    for (auto [flag, dest] : {std::pair<const char*, std::string*>{"--out", &out}, {"--resume", &resume}}) {
      const std::string f = flag;
      if (args[i] == f && i + 1 < args.size()) *dest = args[i + 1];
      else if (args[i].rfind(f + "=", 0) == 0) *dest = args[i].substr(f.size() + 1);
    }
  }
  return resume.empty() ? out : resume;
}

int run_tui(std::string run, const std::vector<std::string>* train_args) {
  if (!::isatty(STDOUT_FILENO)) fail("dashboard --tui needs a terminal on stdout");
  if (train_args) {
    run = run_dir_of_train_args(*train_args);
    if (run.empty()) fail("dashboard --train: give the trainer --out RUN (or --resume RUN): the run folder to watch");
  }
  RunWatch watch(run);
  if (!watch.poll() && !train_args) fail(watch.path() + ": no telemetry (is " + run + " a training run directory?)");
  install_handlers();
  RunControls controls(run);
  if (train_args) controls.launch(*train_args);
  TuiPanel panel;
  panel.controls = true;
  int64_t seen = watch.view().log_added;
  bool asking = false, quit = false;
  {
    TerminalSession term;
    while (!quit) {
      watch.poll();  // a run dir that disappears keeps the last view
      const RunView& v = watch.view();
      // A scrolled-back view stays on the same lines while new ones arrive below.
      if (panel.log_scroll > 0 && v.log_added > seen) panel.log_scroll += int(v.log_added - seen);
      seen = v.log_added;
      controls.tick();
      if (controls.stopped()) break;
      winsize ws{};
      int cols = 80, rows = 24;
      if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) cols = ws.ws_col, rows = ws.ws_row;
      const int page = std::max(1, tui_log_rows(rows));
      const int max_scroll = std::max(0, int(v.log.size()) - page);
      panel.log_scroll = std::clamp(panel.log_scroll, 0, max_scroll);
      panel.status = controls.status();
      std::string frame = "\x1b[H";
      const auto lines = render_tui(v, run, cols, rows, panel);
      for (size_t i = 0; i < lines.size(); ++i) frame += lines[i] + (i + 1 < lines.size() ? "\x1b[K\r\n" : "\x1b[K");
      std::fwrite(frame.data(), 1, frame.size(), stdout);
      std::fflush(stdout);
      if (g_terminate) {  // not a person at the keyboard: leave any training running
        controls.leave();
        break;
      }
      pollfd in{STDIN_FILENO, POLLIN, 0};
      std::string bytes;
      if (::poll(&in, 1, 500) > 0) {
        char buf[64];
        for (ssize_t n; (n = ::read(STDIN_FILENO, buf, sizeof buf)) > 0;) bytes.append(buf, size_t(n));
      }
      std::vector<KeyPress> keys = decode_keys(bytes);
      if (g_interrupt) g_interrupt = 0, keys.push_back({TuiKey::letter, 'q'});
      for (const KeyPress& k : keys) {
        if (asking) {  // q's question: s stops the training, l leaves it running, anything else stays
          asking = false;
          if (k.key == TuiKey::letter && k.letter == 's') controls.stop_child();
          else if (k.key == TuiKey::letter && k.letter == 'l') {
            controls.leave();
            quit = true;
          } else {
            controls.say("");
          }
          continue;
        }
        switch (k.key) {
          case TuiKey::up: panel.log_scroll = std::min(max_scroll, panel.log_scroll + 1); break;
          case TuiKey::down: panel.log_scroll = std::max(0, panel.log_scroll - 1); break;
          case TuiKey::page_up: panel.log_scroll = std::min(max_scroll, panel.log_scroll + page); break;
          case TuiKey::page_down: panel.log_scroll = std::max(0, panel.log_scroll - page); break;
          case TuiKey::home: panel.log_scroll = max_scroll; break;
          case TuiKey::end: panel.log_scroll = 0; break;
          case TuiKey::interrupt:
          case TuiKey::letter:
            if (k.key == TuiKey::interrupt || k.letter == 'q') {
              if (!controls.leave_needs_asking()) quit = true;
              else {
                asking = true;
                controls.say("the trainer this dashboard started is running: s stops it (checkpoint first) and quits, "
                             "l leaves it running and quits, any other key stays");
              }
            } else if (k.letter == 'g') {
              controls.sample(v);
            } else if (k.letter == 'p') {
              controls.pause_or_resume();
            } else if (k.letter == 'r') {
              controls.restart();
            }
            break;
          case TuiKey::other: break;
        }
        if (quit) break;
      }
    }
  }
  controls.report();
  return 0;
}

}  // namespace anetrain
