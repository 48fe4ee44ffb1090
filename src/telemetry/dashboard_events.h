// What the dashboard serves of a run's telemetry: each line parsed, checked and re-serialised —
// never a byte of the file passed on as it is — and `/api/runs/N/telemetry` produced from the
// file a chunk at a time, so a reply's memory does not grow with the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "telemetry/tail.h"

namespace httplib {
class DataSink;
}

namespace anetrain {

// A telemetry line as the page may see it: a JSON object with a string "event", nested at most
// 64 deep. False for anything else (the caller counts it as a bad line).
bool parse_telemetry_event(const std::string& line, nlohmann::json* out);

// JSON text of a checked event (text that is not UTF-8 becomes U+FFFD rather than an exception).
std::string dump_event(const nlohmann::json& j);

// One `/api/runs/N/telemetry` reply: {"run":N,"events":[...],"bad_lines":K}, written as the
// client takes it — each call turns one chunk of the file (≤ 512 KB, plus a line's remainder up
// to 1 MB) into JSON, so sixteen readers of a 55 MB file cost a few MB each, not 2.5 GB.
class TelemetryReply {
 public:
  TelemetryReply(const std::string& file, size_t run);
  bool open();  // reads the first chunk; false: no telemetry (yet)
  // Writes what was read and reads the next chunk; ends the reply after the last. False
  // abandons it unfinished: the client went away, or the file was replaced (or cut short)
  // mid-way — never two runs spliced into one reply.
  bool write_next(httplib::DataSink& sink);

 private:
  LineTail tail_;
  size_t run_;
  std::vector<std::string> lines_;
  bool started_ = false;
  int64_t events_ = 0, bad_ = 0;
};

}  // namespace anetrain
