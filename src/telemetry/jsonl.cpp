#include "telemetry/jsonl.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

#include "core/error.h"

#ifndef ANETRAIN_GIT_COMMIT
#define ANETRAIN_GIT_COMMIT "unknown"
#endif

namespace anetrain {

JsonlWriter::JsonlWriter(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path + ": cannot open telemetry file for appending: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    char last = '\n';
    try {
      if (::pread(fd_, &last, 1, st.st_size - 1) == 1 && last != '\n') append("\n");
    } catch (const Error&) {
      ::close(fd_);  // no destructor runs for a constructor that throws
      throw;
    }
  }
}

JsonlWriter::~JsonlWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void JsonlWriter::emit(const std::string& event, nlohmann::ordered_json fields) {
  nlohmann::ordered_json line;
  line["event"] = event;
  line["time"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  append(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

// One write(2) per line, unbuffered: nothing waits in a stdio buffer to fail later, unseen.
void JsonlWriter::append(const std::string& text) {
  const off_t start = ::lseek(fd_, 0, SEEK_END);  // -1 on a pipe: nothing to cut back there
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = ::write(fd_, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w > 0) {
      done += size_t(w);
      continue;
    }
    const int err = w < 0 ? errno : ENOSPC;  // a 0-byte write of a non-empty line: no room
    std::string msg = path_ + ": write failed: " + std::strerror(err);
    if (done > 0 && (start < 0 || ::ftruncate(fd_, start) != 0))
      msg += " (a partial line of " + std::to_string(done) + " bytes may remain at its end)";
    fail(msg);
  }
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
