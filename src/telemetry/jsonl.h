// Telemetry as an append-only JSON Lines stream (schema: docs/telemetry.md). One writer per
// run; each event is one line, flushed as written so a crash loses at most the line in flight.
#pragma once
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace anetrain {

class JsonlWriter {
 public:
  explicit JsonlWriter(const std::string& path);  // appends
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;
  // Adds "event" and "time" (Unix seconds) and writes the line.
  void emit(const std::string& event, nlohmann::ordered_json fields);

 private:
  std::FILE* f_ = nullptr;
};

// Facts about where a run happens, for run_start.
std::string cpu_model_name();
std::string git_commit();  // baked in at build time; "unknown" outside a git checkout
// Resident memory of this process in MB: now, and the peak since it started (the kernel's
// high-water mark, so a short spike between two readings still counts).
double rss_mb();
double peak_rss_mb();

}  // namespace anetrain
