// The human-facing progress report: on a terminal one line rewritten in place (step/total,
// loss, tokens/s, ETA); otherwise plain lines, so logs and CI output stay readable. Text passed in
// is printed with its control characters escaped (core/terminal_text.h).
#pragma once
#include <cstdint>
#include <string>

namespace anetrain {

class ProgressLine {
 public:
  ProgressLine();
  // `extra` is appended (e.g. an fp16 backend's "  scale 65536  skipped 2").
  void update(int64_t step, int64_t total, double loss, double lr, double tokens_per_s, double eta_s,
              const std::string& extra = "");
  void message(const std::string& text);  // a permanent line (eval, checkpoint, ...)
  void finish();

 private:
  bool tty_;
  bool dirty_ = false;
};

std::string format_duration(double seconds);

}  // namespace anetrain
