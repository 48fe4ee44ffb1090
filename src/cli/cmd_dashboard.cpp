// `anetrain dashboard RUN...`: the runs on a local web page (telemetry/dashboard_server.h), served
// until Ctrl-C. `--tui RUN`: a run in the terminal, for an SSH session — refreshed every second
// from its telemetry (live while training, complete after), redrawn when the terminal is
// resized, `q` (or Ctrl-C) quits and gives the terminal back as it was.
#include <memory>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "core/terminal_text.h"
#include "telemetry/dashboard_server.h"
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

int run_web(const DashboardOptions& o) {
  for (const auto& r : o.runs)
    if (!std::filesystem::exists(telemetry_file(r)))
      std::fprintf(stderr, "dashboard: %s: no telemetry.jsonl yet; the page shows the run when it appears\n",
                   terminal_safe(r).c_str());
  // Before the banner: whoever reads "Ctrl-C stops" may send it at once.
  struct sigaction sa {};
  sa.sa_handler = on_quit;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  DashboardServer server(o);
  server.start();
  std::fputs(server.banner("Ctrl-C stops").c_str(), stdout);
  std::fflush(stdout);
  while (!g_quit) ::poll(nullptr, 0, 500);
  server.stop();
  return 0;
}

}  // namespace

void add_dashboard_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand(
      "dashboard", "Watch training runs on a local web page (live, or after they ended); --tui: in the terminal");
  struct Options {
    DashboardOptions web;
    bool tui = false;
  };
  const auto o = std::make_shared<Options>();
  cmd->add_option("runs", o->web.runs, "Run directories (several are overlaid)")->required();
  cmd->add_option("--port", o->web.port, "Port (0 picks a free one)")->capture_default_str();
  cmd->add_option("--host", o->web.host, "Address to listen on (default: this machine only)")->capture_default_str();
  cmd->add_flag("--tui", o->tui, "Draw the run in this terminal (loss chart, stats, phases, latest sample)");
  cmd->callback([&run, o] {
    run = [o] {
      if (!o->tui) return run_web(o->web);
      if (o->web.runs.size() != 1) fail("dashboard --tui shows one run; give one run directory");
      return run_tui(o->web.runs[0]);
    };
  });
}

}  // namespace anetrain
