#include "telemetry/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "core/terminal_text.h"

namespace anetrain {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long t = long(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

ProgressLine::ProgressLine() : tty_(::isatty(STDOUT_FILENO) != 0) {}

void ProgressLine::update(int64_t step, int64_t total, double loss, double lr, double tps, double eta,
                          const std::string& extra) {
  char buf[320];
  std::snprintf(buf, sizeof buf, "step %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s%s", (long long)step,
                (long long)total, loss, lr, tps, format_duration(eta).c_str(), terminal_safe(extra).c_str());
  if (tty_) {
    std::printf("\r\033[K%s", buf);
    dirty_ = true;
  } else {
    std::printf("%s\n", buf);
  }
  std::fflush(stdout);
}

void ProgressLine::message(const std::string& text) {
  if (tty_ && dirty_) std::printf("\r\033[K");
  std::printf("%s\n", terminal_safe(text).c_str());  // messages quote paths and model names
  dirty_ = false;
  std::fflush(stdout);
}

void ProgressLine::finish() {
  if (tty_ && dirty_) std::printf("\n");
  dirty_ = false;
  std::fflush(stdout);
}

}  // namespace anetrain
