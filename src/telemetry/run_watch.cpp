#include "telemetry/run_watch.h"

#include <cmath>
#include <filesystem>
#include <fstream>

namespace anetrain {

RunWatch::RunWatch(std::string run_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  path_ = fs::is_directory(run_dir, ec) ? (fs::path(run_dir) / "telemetry.jsonl").string() : run_dir;
}

bool RunWatch::poll() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return false;
  in.seekg(0, std::ios::end);
  const uint64_t size = uint64_t(in.tellg());
  if (size < offset_) {  // replaced by a shorter file: start over
    offset_ = 0;
    pending_.clear();
    view_ = RunView{};
  }
  in.seekg(std::streamoff(offset_));
  std::string chunk(size - offset_, '\0');
  in.read(chunk.data(), std::streamsize(chunk.size()));
  chunk.resize(size_t(in.gcount()));
  offset_ += chunk.size();
  pending_ += chunk;
  // Only complete lines: the writer may be halfway through one.
  size_t begin = 0;
  for (size_t nl; (nl = pending_.find('\n', begin)) != std::string::npos; begin = nl + 1)
    take(pending_.substr(begin, nl - begin));
  pending_.erase(0, begin);
  if (pending_.size() > (size_t(1) << 20)) {  // a "line" this long is not telemetry
    pending_.clear();
    ++view_.bad_lines;
  }
  return true;
}

void RunWatch::take(const std::string& line) {
  if (line.empty()) return;
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("event") || !j["event"].is_string()) {
    ++view_.bad_lines;
    return;
  }
  const std::string event = j["event"].get<std::string>();
  auto number = [&](const char* key, double* v) {
    if (!j.contains(key) || !j[key].is_number()) return false;
    *v = j[key].get<double>();
    return std::isfinite(*v);
  };
  double step = 0, v = 0;
  if (event == "run_start") {
    view_.start = j;
    view_.status.clear();
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
  } else if (event == "run_end") {
    view_.status = j.value("status", std::string("ended"));
  }
}

}  // namespace anetrain
