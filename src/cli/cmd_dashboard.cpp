// `anetrain dashboard --tui RUN`: a run in the terminal, for an SSH session — refreshed every
// second from its telemetry (live while training, complete after), redrawn when the terminal is
// resized, `q` (or Ctrl-C) quits and gives the terminal back as it was. The web page (issue 12's
// other half) is not in this build yet.
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "telemetry/run_watch.h"
#include "telemetry/tui.h"

namespace anetrain {

namespace {

volatile std::sig_atomic_t g_quit = 0;
void on_quit(int) { g_quit = 1; }
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

int run_tui(const std::string& run) {
  if (!::isatty(STDOUT_FILENO)) fail("dashboard --tui needs a terminal on stdout");
  RunWatch watch(run);
  if (!watch.poll()) fail(watch.path() + ": no telemetry (is " + run + " a training run directory?)");
  struct sigaction sa {};
  sa.sa_handler = on_quit;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  sa.sa_handler = on_resize;
  ::sigaction(SIGWINCH, &sa, nullptr);
  TerminalSession term;
  while (!g_quit) {
    watch.poll();  // a run dir that disappears keeps the last view
    winsize ws{};
    int cols = 80, rows = 24;
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) cols = ws.ws_col, rows = ws.ws_row;
    std::string frame = "\x1b[H";
    const auto lines = render_tui(watch.view(), run, cols, rows);
    for (size_t i = 0; i < lines.size(); ++i) frame += lines[i] + (i + 1 < lines.size() ? "\x1b[K\r\n" : "\x1b[K");
    std::fwrite(frame.data(), 1, frame.size(), stdout);
    std::fflush(stdout);
    pollfd in{STDIN_FILENO, POLLIN, 0};
    if (::poll(&in, 1, 1000) > 0) {
      char c = 0;
      while (::read(STDIN_FILENO, &c, 1) == 1)
        if (c == 'q' || c == 'Q' || c == 3) g_quit = 1;
    }
  }
  return 0;
}

}  // namespace

void add_dashboard_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("dashboard", "Watch a training run: --tui draws it in the terminal");
  static std::vector<std::string> runs;
  static bool tui = false;
  cmd->add_option("runs", runs, "Run directory")->required();
  cmd->add_flag("--tui", tui, "Draw the run in this terminal (loss chart, stats, phases, latest sample)");
  cmd->callback([&run] {
    run = [] {
      if (!tui) fail("dashboard: the web page is not in this build yet; --tui shows the run in the terminal");
      if (runs.size() != 1) fail("dashboard --tui shows one run; give one run directory");
      return run_tui(runs[0]);
    };
  });
}

}  // namespace anetrain
