#include "cli/dashboard_trainer.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "train/run_control.h"

namespace anetrain {

namespace fs = std::filesystem;

namespace {

std::string self_program() {
#ifdef __APPLE__
  char buf[4096];
  uint32_t n = sizeof buf;
  if (_NSGetExecutablePath(buf, &n) == 0) return buf;
  fail("dashboard: cannot find the anetrain program to start the trainer");
#else
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) fail("dashboard: cannot find the anetrain program to start the trainer: " + ec.message());
  return p.string();
#endif
}


}  // namespace

LaunchedTrainer::LaunchedTrainer(const std::vector<std::string>& train_args, std::string run_dir)
    : run_dir_(std::move(run_dir)) {
  const std::string program = self_program();
  std::vector<std::string> args = {program, "train"};
  args.insert(args.end(), train_args.begin(), train_args.end());
  held_ = "# " + std::to_string(std::time(nullptr)) + " (Unix time): anetrain train";
  for (const auto& a : train_args) held_ += " " + a;
  held_ += "\n";
  int fds[2];
  if (::pipe(fds) != 0) fail(std::string("dashboard: cannot start the trainer: ") + std::strerror(errno));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    // The child: its own session (no terminal signals), output into the pipe, and a write to a
    // pipe nobody reads any more fails instead of killing a training run.
    ::setsid();
    const int null_in = ::open("/dev/null", O_RDONLY);
    if (null_in >= 0) ::dup2(null_in, STDIN_FILENO);
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::signal(SIGPIPE, SIG_IGN);
    ::execv(program.c_str(), argv.data());
    const std::string msg = "anetrain dashboard: cannot run " + program + ": " + std::strerror(errno) + "\n";
    write_fully(STDERR_FILENO, msg.data(), msg.size());
    ::_exit(127);
  }
  const int e = errno;
  ::close(fds[1]);
  if (pid_ < 0) {
    ::close(fds[0]);
    fail(std::string("dashboard: cannot start the trainer: ") + std::strerror(e));
  }
  out_fd_ = fds[0];
  ::fcntl(out_fd_, F_SETFL, ::fcntl(out_fd_, F_GETFL) | O_NONBLOCK);
  ::fcntl(out_fd_, F_SETFD, FD_CLOEXEC);
}

LaunchedTrainer::~LaunchedTrainer() {
  if (out_fd_ >= 0) ::close(out_fd_);
  if (log_fd_ >= 0) ::close(log_fd_);
}

void LaunchedTrainer::log(const std::string& text) {
  held_ += text;
  if (log_fd_ < 0 && log_problem_.empty()) log_fd_ = open_train_log(run_dir_, &log_problem_);
  if (log_fd_ < 0) {
    if (!log_problem_.empty()) held_.clear();  // it will never be kept
    return;
  }
  if (!write_fully(log_fd_, held_.data(), held_.size())) log_problem_ = run_dir_ + "/train.log: a write failed";
  held_.clear();
}

std::vector<std::string> LaunchedTrainer::take_lines() {
  std::vector<std::string> lines;
  if (out_fd_ < 0) return lines;
  char buf[4096];
  std::string got;
  for (;;) {
    const ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n > 0) {
      got.append(buf, size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {  // the trainer (and anything it started) closed its output
      ::close(out_fd_);
      out_fd_ = -1;
    }
    break;
  }
  log(got);  // also retries the log once RUN has become a run folder
  partial_ += got;
  for (size_t nl; (nl = partial_.find_first_of("\r\n")) != std::string::npos; partial_.erase(0, nl + 1))
    if (nl > 0) lines.push_back(partial_.substr(0, nl));
  if (out_fd_ < 0 && !partial_.empty()) lines.push_back(std::move(partial_)), partial_.clear();
  return lines;
}

bool LaunchedTrainer::running() {
  if (exit_code_ >= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  exit_code_ = r < 0 ? 255 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return false;
}

void LaunchedTrainer::hand_off() {
  if (out_fd_ < 0) return;
  const pid_t relay = ::fork();
  if (relay == 0) {
    ::setsid();
    const int null_fd = ::open("/dev/null", O_RDWR);
    for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO})
      if (null_fd >= 0) ::dup2(null_fd, fd);
    ::fcntl(out_fd_, F_SETFL, ::fcntl(out_fd_, F_GETFL) & ~O_NONBLOCK);
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(out_fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      log(std::string(buf, size_t(n)));
    }
    ::_exit(0);
  }
  // The relay holds the pipe now (or, if it could not start, the trainer's writes fail quietly).
  ::close(out_fd_);
  out_fd_ = -1;
}

}  // namespace anetrain
