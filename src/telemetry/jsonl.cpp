#include "telemetry/jsonl.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "core/error.h"

#ifndef ANETRAIN_GIT_COMMIT
#define ANETRAIN_GIT_COMMIT "unknown"
#endif

namespace anetrain {

JsonlWriter::JsonlWriter(const std::string& path) {
  f_ = std::fopen(path.c_str(), "a");
  if (!f_) fail(path + ": cannot open telemetry file for appending");
}

JsonlWriter::~JsonlWriter() {
  if (f_) std::fclose(f_);
}

void JsonlWriter::emit(const std::string& event, nlohmann::ordered_json fields) {
  nlohmann::ordered_json line;
  line["event"] = event;
  line["time"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(text.data(), 1, text.size(), f_);
  std::fflush(f_);
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      auto pos = line.find(':');
      if (pos != std::string::npos) return line.substr(pos + 2);
    }
  return "unknown";
}

std::string git_commit() { return ANETRAIN_GIT_COMMIT; }

double rss_mb() {
  std::ifstream in("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  if (!(in >> pages_total >> pages_resident)) return 0;
  return double(pages_resident) * double(sysconf(_SC_PAGESIZE)) / 1e6;
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) * 1024.0 / 1e6;  // Linux reports kilobytes
}

}  // namespace anetrain
