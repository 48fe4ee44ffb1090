#include "telemetry/run_watch.h"

#include <cmath>
#include <filesystem>

#include "telemetry/tui_log.h"

namespace anetrain {

std::string telemetry_file(const std::string& run) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(run, ec) && fs::path(run).extension() == ".jsonl") return run;
  return (fs::path(run) / "telemetry.jsonl").string();
}

RunWatch::RunWatch(std::string run_dir) : tail_(telemetry_file(run_dir)) {}

bool RunWatch::poll() {
  std::vector<std::string> lines;
  const bool found = tail_.poll_all(lines);
  if (tail_.restarted()) view_ = RunView{};  // replaced by another file: start over
  for (const auto& line : lines) take(line);
  view_.bad_lines += tail_.dropped_lines() - dropped_seen_;
  dropped_seen_ = tail_.dropped_lines();
  return found;
}

void RunWatch::take(const std::string& line) {
  if (line.empty()) return;
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("event") || !j["event"].is_string()) {
    ++view_.bad_lines;
    return;
  }
  const std::string event = j["event"].get<std::string>();
  if (std::string text = event_log_line(j); !text.empty()) {
    view_.log.push_back(std::move(text));
    ++view_.log_added;
    if (view_.log.size() > RunView::kLogLines) view_.log.pop_front();
  }
  auto number = [&](const char* key, double* v) {
    if (!j.contains(key) || !j[key].is_number()) return false;
    *v = j[key].get<double>();
    return std::isfinite(*v);
  };
  double step = 0, v = 0;
  if (event == "run_start") {
    view_.start = j;
    view_.status.clear();
    view_.efficiency = nullptr;  // a resumed run reports its own
    // A resumed run re-does the steps after its checkpoint: drop the abandoned points.
    double from = 0;
    if (number("resumed_from_step", &from))
      for (auto* series : {&view_.loss, &view_.val_loss})
        while (!series->empty() && double(series->back().first) > from) series->pop_back();
  } else if (event == "step" && number("step", &step)) {
    view_.last_step = j;
    if (number("loss", &v)) view_.loss.emplace_back(int64_t(step), v);
  } else if (event == "eval" && number("step", &step) && number("val_loss", &v)) {
    view_.val_loss.emplace_back(int64_t(step), v);
  } else if (event == "sample") {
    view_.last_sample = j;
  } else if (event == "efficiency") {
    view_.efficiency = j;
  } else if (event == "run_end") {
    view_.status = j.value("status", std::string("ended"));
  }
}

}  // namespace anetrain
