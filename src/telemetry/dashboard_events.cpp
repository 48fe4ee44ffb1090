#include "telemetry/dashboard_events.h"

#include <httplib.h>

namespace anetrain {

namespace {
// Serialising a value again recurses once per level: a 1 MB line of brackets would overflow a
// worker's stack.
constexpr int kMaxDepth = 64;
constexpr size_t kMaxLine = size_t(1) << 20;      // longer lines are skipped and counted
constexpr size_t kReadChunk = size_t(512) << 10;  // what one write_next() reads of the file
}  // namespace

bool parse_telemetry_event(const std::string& line, nlohmann::json* out) {
  if (line.empty()) return false;
  bool too_deep = false;
  const nlohmann::json::parser_callback_t limit = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxDepth) too_deep = true;
    return !too_deep;
  };
  *out = nlohmann::json::parse(line, limit, false);
  if (too_deep) return false;
  return !out->is_discarded() && out->is_object() && out->contains("event") && (*out)["event"].is_string();
}

std::string dump_event(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

TelemetryReply::TelemetryReply(const std::string& file, size_t run) : tail_(file, kMaxLine, kReadChunk), run_(run) {}

bool TelemetryReply::open() { return tail_.poll(lines_); }

bool TelemetryReply::write_next(httplib::DataSink& sink) {
  std::string out = started_ ? "" : "{\"run\":" + std::to_string(run_) + ",\"events\":[";
  started_ = true;
  nlohmann::json e;
  for (const auto& l : lines_) {
    if (parse_telemetry_event(l, &e)) out += (events_++ ? "," : "") + dump_event(e);
    else if (!l.empty()) ++bad_;
  }
  lines_.clear();
  // (httplib's sink takes an empty write as the end of the reply)
  if (!out.empty() && !sink.write(out.data(), out.size())) return false;
  if (tail_.more_pending()) return tail_.poll(lines_) && !tail_.restarted();
  const std::string end = "],\"bad_lines\":" + std::to_string(bad_ + tail_.dropped_lines()) + "}";
  if (!sink.write(end.data(), end.size())) return false;
  sink.done();
  return true;
}

}  // namespace anetrain
