// Follows a run's telemetry.jsonl as it grows (what a live view needs): each poll() parses only
// the complete lines added since the last one, so watching a long run costs nothing per refresh.
// Keeps the latest run_start (model, backend, ...), per-step loss and the eval points, the latest
// step's numbers, the latest sample, the run_end status and the last kLogLines events as text (the
// log panel; telemetry/tui_log.h). Bad lines are counted and skipped.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "telemetry/tail.h"

namespace anetrain {

// A run's telemetry file: RUN/telemetry.jsonl, or RUN itself when it names a .jsonl file. A run
// that does not exist yet is taken to be a directory (a live view may start before the run).
std::string telemetry_file(const std::string& run);

struct RunView {
  nlohmann::json start;        // the latest run_start ({} before one)
  nlohmann::json last_step;    // the latest step event
  nlohmann::json last_sample;  // the latest sample event
  nlohmann::json efficiency;   // the run's end-of-run efficiency event (null until it ends)
  std::string status;          // "" while running, else run_end's status
  std::vector<std::pair<int64_t, double>> loss, val_loss;  // (step, value), finite values only
  int64_t bad_lines = 0;
  static constexpr size_t kLogLines = 2000;
  std::deque<std::string> log;  // oldest first; a resume keeps the lines before it (they happened)
  int64_t log_added = 0;        // lines ever added, so a scrolled view can stay on the same lines
};

class RunWatch {
 public:
  explicit RunWatch(std::string run_dir);
  // Reads what was appended; false when the file is not there (yet, or any more).
  bool poll();
  const RunView& view() const { return view_; }
  const std::string& path() const { return tail_.path(); }

 private:
  void take(const std::string& line);
  LineTail tail_;
  int64_t dropped_seen_ = 0;
  RunView view_;
};

}  // namespace anetrain
