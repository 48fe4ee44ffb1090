// Telemetry as an append-only JSON Lines stream (schema: docs/telemetry.md). One writer per
// run; each event is one line, written with one write(2) so a crash loses at most the line in
// flight. A failed write never passes silently: emit() throws anetrain::Error
// "PATH: write failed: <strerror(errno)>" (a full disk: "No space left on device") after cutting
// the file back to its last whole line; a later emit() tries again.
#pragma once
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace anetrain {

class JsonlWriter {
 public:
  // Appends; a line cut by an earlier crash is ended first so the next event starts a line of its own.
  explicit JsonlWriter(const std::string& path);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;
  // Adds "event" and "time" (Unix seconds) and writes the line; throws Error as above.
  void emit(const std::string& event, nlohmann::ordered_json fields);
  const std::string& path() const { return path_; }

 private:
  void append(const std::string& line);
  std::string path_;
  int fd_ = -1;
};

// Facts about where a run happens, for run_start.
std::string cpu_model_name();
std::string git_commit();  // baked in at build time; "unknown" outside a git checkout
// Resident memory of this process in MB: now, and the peak since it started (the kernel's
// high-water mark, so a short spike between two readings still counts).
double rss_mb();
double peak_rss_mb();

}  // namespace anetrain
