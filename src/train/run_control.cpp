#include "train/run_control.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/warn.h"
#include "formats/checkpoint_model.h"

namespace anetrain {

namespace {

constexpr const char* kFormat = "anetrain-control";
constexpr const char kLogHeader[] = "# anetrain train output, kept by anetrain dashboard (appended to, never replaced)\n";

std::string this_host() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown host";
  return buf;
}


const char* action_name(ControlAction a) { return a == ControlAction::sample ? "sample" : "pause"; }

// A request of anetrain's: the marker and the fields the trainer reads.
bool is_request(const nlohmann::json& j) {
  return j.is_object() && j.value("format", std::string()) == kFormat && j.contains("pid") &&
         j["pid"].is_number_integer() && j.contains("action") && j["action"].is_string();
}

}  // namespace

std::string control_file(const std::string& run_dir) {
  return (std::filesystem::path(run_dir) / "control.json").string();
}

std::optional<long> running_trainer(const std::string& run_dir) {
  // run.lock holds "pid N on HOST" while (and after) a trainer used the run.
  std::ifstream f(std::filesystem::path(run_dir) / "run.lock");
  std::string word, on, host;
  long pid = 0;
  if (!(f >> word >> pid >> on) || word != "pid" || on != "on" || pid <= 0) return std::nullopt;
  std::getline(f >> std::ws, host);
  if (host != this_host()) return std::nullopt;
  if (::kill(pid_t(pid), 0) != 0 && errno != EPERM) return std::nullopt;
  return pid;
}

bool control_pending(const std::string& run_dir) {
  struct stat st {};
  return ::lstat(control_file(run_dir).c_str(), &st) == 0;
}

void send_control(const std::string& run_dir, ControlAction action, long pid) {
  const std::string path = control_file(run_dir);
  const nlohmann::json req = {{"format", kFormat}, {"action", action_name(action)}, {"pid", pid},
                              {"time", double(std::time(nullptr))}, {"from", "anetrain dashboard"}};
  const std::string text = req.dump() + "\n";
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp + ": cannot write a control request: " + std::strerror(errno));
  const bool written = ::write(fd, text.data(), text.size()) == ssize_t(text.size());
  ::close(fd);
  // link() never replaces: a waiting request, or a file of someone else's, stays as it is.
  const int linked = written ? ::link(tmp.c_str(), path.c_str()) : -1;
  const int e = errno;
  ::unlink(tmp.c_str());
  if (!written) fail(tmp + ": cannot write a control request (disk full?)");
  if (linked != 0 && e == EEXIST)
    fail(path + " exists: the trainer has not taken the last request yet (or the file is not anetrain's)");
  if (linked != 0) fail(path + ": cannot place a control request: " + std::strerror(e));
}

int open_train_log(const std::string& run_dir, std::string* problem) {
  problem->clear();
  std::ifstream f(std::filesystem::path(run_dir) / "run.json");
  const nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
  if (!j.is_object() || j.value("format", std::string()) != kRunFormat) return -1;  // not a run (yet)
  const std::string path = (std::filesystem::path(run_dir) / "train.log").string();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd >= 0) {
    if (write_fully(fd, kLogHeader, sizeof kLogHeader - 1)) return fd;
    ::close(fd);
    *problem = path + ": cannot write (disk full?); the trainer's output is only shown";
    return -1;
  }
  if (errno == EEXIST) fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    *problem = path + ": " + std::strerror(errno) + "; the trainer's output is only shown";
    return -1;
  }
  char head[sizeof kLogHeader] = {};
  if (::pread(fd, head, sizeof kLogHeader - 1, 0) == ssize_t(sizeof kLogHeader - 1) &&
      std::memcmp(head, kLogHeader, sizeof kLogHeader - 1) == 0)
    return fd;
  ::close(fd);
  *problem = path + " is not a log of anetrain's (its first line differs): left as it is; the trainer's output is only shown";
  return -1;
}

ControlInbox::ControlInbox(std::string run_dir) : path_(control_file(run_dir)) {}

ControlRequests ControlInbox::poll() {
  ControlRequests got;
  struct stat st {};
  if (::lstat(path_.c_str(), &st) != 0) return got;  // the usual case: one failed stat per step
  if (uint64_t(st.st_ino) == ignored_ino_ && int64_t(st.st_mtime) == ignored_mtime_) return got;
  std::string text;
  if (S_ISREG(st.st_mode) && st.st_size <= 4096) {
    std::ifstream f(path_, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!is_request(j)) {
    ignored_ino_ = uint64_t(st.st_ino);
    ignored_mtime_ = int64_t(st.st_mtime);
    warn(path_ + " is not a control request of anetrain's (no \"format\": \"anetrain-control\"); left as it is");
    return got;
  }
  // Ours: taken whatever it asks, so it cannot linger for a later trainer.
  ::unlink(path_.c_str());
  const long pid = j["pid"].get<long>();
  const std::string action = j["action"].get<std::string>();
  if (pid != long(::getpid())) {
    warn(path_ + ": a request (" + action + ") for trainer pid " + std::to_string(pid) + ", not this one (pid " +
         std::to_string(::getpid()) + "); ignored");
    return got;
  }
  if (action == "sample") got.sample = true;
  else if (action == "pause") got.pause = true;
  else warn(path_ + ": unknown request \"" + action + "\" ignored (known: sample, pause)");
  return got;
}

}  // namespace anetrain
