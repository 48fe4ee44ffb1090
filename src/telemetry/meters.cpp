#include "telemetry/meters.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

extern char** environ;

namespace anetrain {

namespace {

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) * 1e-6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

bool read_number(const std::string& path, uint64_t* v) {
  std::ifstream in(path);
  return bool(in >> *v);
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

CpuMeter::CpuMeter() : last_cpu_s_(process_cpu_seconds()), last_wall_s_(wall_seconds()) {}

double CpuMeter::percent_since_last() {
  const double cpu = process_cpu_seconds(), wall = wall_seconds();
  const double pct = wall > last_wall_s_ ? 100.0 * (cpu - last_cpu_s_) / (wall - last_wall_s_) : 0.0;
  last_cpu_s_ = cpu;
  last_wall_s_ = wall;
  return pct;
}

// ---------------- RAPL ----------------

RaplMeter::RaplMeter(const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    description_ = "no RAPL energy counters on this machine (" + root + " is absent)";
    return;
  }
  std::vector<std::string> unreadable;
  std::vector<fs::path> zones;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    // Package zones are "intel-rapl:N"; "intel-rapl:N:M" are their parts (cores, dram), already
    // inside the package's count.
    if (name.rfind("intel-rapl:", 0) == 0 && name.find(':', 11) == std::string::npos) zones.push_back(e.path());
  }
  std::sort(zones.begin(), zones.end());
  // Top-level zones are the packages ("package-N") and, on many laptops, "psys" — the whole
  // platform, packages included. Sum the packages; psys alone only where there are none.
  auto zone_name = [](const fs::path& z) {
    std::string n = z.filename().string();
    std::ifstream(z / "name") >> n;
    return n;
  };
  bool have_package = false;
  for (const auto& z : zones) have_package = have_package || zone_name(z).rfind("package-", 0) == 0;
  for (const auto& z : zones) {
    Domain d;
    d.energy_path = (z / "energy_uj").string();
    d.name = zone_name(z);
    if (have_package ? d.name.rfind("package-", 0) != 0 : d.name != "psys") continue;
    if (!read_number(d.energy_path, &d.last_uj) || !read_number((z / "max_energy_range_uj").string(), &d.range_uj)) {
      unreadable.push_back(d.name);
      continue;
    }
    domains_.push_back(d);
  }
  if (!domains_.empty()) {
    description_ = "RAPL";
    for (size_t i = 0; i < domains_.size(); ++i) description_ += (i ? " + " : " ") + domains_[i].name;
  } else if (!unreadable.empty()) {
    description_ = "RAPL counters present but not readable by this user (" + unreadable[0] + "; root can read them)";
  } else {
    description_ = "no RAPL package domains under " + root;
  }
  last_s_ = wall_seconds();
}

std::optional<PowerReading> RaplMeter::since_last() {
  if (domains_.empty()) return std::nullopt;
  const double now = wall_seconds(), dt = now - last_s_;
  PowerReading r;
  for (auto& d : domains_) {
    uint64_t e = 0;
    if (!read_number(d.energy_path, &e)) return std::nullopt;
    const uint64_t delta = e >= d.last_uj ? e - d.last_uj : e + d.range_uj - d.last_uj;  // wrapped
    d.last_uj = e;
    if (dt > 0) r.parts.emplace_back(d.name, double(delta) * 1e-6 / dt);
  }
  last_s_ = now;
  if (dt <= 0) return std::nullopt;
  for (const auto& p : r.parts) r.watts += p.second;
  if (r.parts.size() == 1) r.parts.clear();  // one package: the total says it all
  return r;
}

// ---------------- powermetrics ----------------

std::optional<PowerReading> PowermetricsParser::feed(std::string_view line) {
  auto finish = [this]() -> std::optional<PowerReading> {
    if (!any_) return std::nullopt;
    PowerReading r = pending_;
    if (r.watts == 0)
      for (const auto& p : r.parts) r.watts += p.second;
    pending_ = PowerReading{};
    any_ = false;
    return r;
  };
  if (line.rfind("*** Sampled system activity", 0) == 0) return finish();
  const size_t at = line.find(" Power");
  const size_t colon = line.find(':');
  if (at == std::string_view::npos || colon == std::string_view::npos || colon < at) return std::nullopt;
  const std::string value(line.substr(colon + 1));
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (end == value.c_str() || std::strstr(end, "mW") == nullptr) return std::nullopt;
  const std::string name(line.substr(0, at));
  if (name.rfind("Combined", 0) == 0) {
    pending_.watts = v / 1000.0;
    any_ = true;
    return finish();
  }
  if (name.find(' ') != std::string::npos) return std::nullopt;  // "Package Power" etc. of other samplers
  pending_.parts.emplace_back(lower(name), v / 1000.0);
  any_ = true;
  return std::nullopt;
}

PowermetricsMeter::PowermetricsMeter(std::vector<std::string> argv, double wait_first_s) {
  int fds[2];
  if (::pipe(fds) != 0) {
    spawn_error_ = std::strerror(errno);
    exited_ = true;
    return;
  }
  ::fcntl(fds[0], F_SETFD, FD_CLOEXEC);  // (no pipe2 on macOS) the child gets the write end via dup2
  ::fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);  // sudo -n must never wait on a prompt
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  // The child starts with no signal blocked: a library call (core/signal_shield.h) holds them off
  // on this thread, and our SIGTERM must reach it.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  const int rc = posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    spawn_error_ = argv[0] + ": " + std::strerror(rc);
    ::close(fds[0]);
    exited_ = true;
    return;
  }
  pid_ = pid;
  reader_ = std::thread([this, fd = fds[0]] { read_output(fd); });
  const double until = wall_seconds() + wait_first_s;
  while (wall_seconds() < until && !exited_) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (have_latest_ || new_samples_ > 0) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

PowermetricsMeter::~PowermetricsMeter() {
  stop_ = true;
  if (pid_ > 0 && !exited_) ::kill(pid_, SIGTERM);  // sudo passes it on to powermetrics
  if (reader_.joinable()) reader_.join();
  if (pid_ > 0 && !reaped_) {
    // Reaped here, not left a zombie: a second to exit on SIGTERM, then SIGKILL.
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) != 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void PowermetricsMeter::read_output(int fd) {
  PowermetricsParser parser;
  std::string buf;
  char chunk[4096];
  while (!stop_) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;  // wakes to notice stop_ even if the child lingers
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    buf.append(chunk, size_t(n));
    size_t begin = 0;
    for (size_t nl; (nl = buf.find('\n', begin)) != std::string::npos; begin = nl + 1) {
      const std::string_view line(buf.data() + begin, nl - begin);
      if (auto r = parser.feed(line)) {
        std::lock_guard<std::mutex> g(mu_);
        sum_.watts += r->watts;
        for (const auto& part : r->parts) {  // (no structured binding: clang 14 cannot capture one)
          auto it = std::find_if(sum_.parts.begin(), sum_.parts.end(),
                                 [&](const auto& q) { return q.first == part.first; });
          if (it == sum_.parts.end()) sum_.parts.push_back(part);
          else it->second += part.second;
        }
        ++new_samples_;
      } else if (!line.empty() && line.find("Power") == std::string_view::npos) {
        std::lock_guard<std::mutex> g(mu_);
        last_text_ = std::string(line.substr(0, 200));
      }
    }
    buf.erase(0, begin);
    if (buf.size() > 16384) buf.clear();  // not line-oriented output: drop it
  }
  ::close(fd);
  int status = 0;
  if (pid_ > 0 && !stop_) reaped_ = ::waitpid(pid_, &status, 0) == pid_;  // end of output: it is exiting
  // Where posix_spawn cannot report a failed exec (some C libraries, and emulators such as
  // qemu-user, run it as fork + exec), the child exits 127 without a word: the shell's "not found".
  if (reaped_ && WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    std::lock_guard<std::mutex> g(mu_);
    if (last_text_.empty()) spawn_error_ = "not found or not executable (exit status 127)";
  }
  exited_ = true;
}

bool PowermetricsMeter::available() const {
  std::lock_guard<std::mutex> g(mu_);
  return have_latest_ || new_samples_ > 0 || !exited_;
}

std::string PowermetricsMeter::description() const {
  std::lock_guard<std::mutex> g(mu_);
  if (!spawn_error_.empty()) return "powermetrics did not start (" + spawn_error_ + ")";
  if (!have_latest_ && new_samples_ == 0 && exited_)
    return "powermetrics needs root (run anetrain with sudo, or allow `sudo -n powermetrics`)" +
           (last_text_.empty() ? std::string() : ": " + last_text_);
  std::string parts;
  const auto& src = new_samples_ > 0 ? sum_.parts : latest_.parts;
  for (const auto& p : src) parts += (parts.empty() ? "" : " + ") + p.first;
  return "powermetrics" + (parts.empty() ? std::string() : ": " + parts) + " (1 s samples)";
}

std::optional<PowerReading> PowermetricsMeter::since_last() {
  std::lock_guard<std::mutex> g(mu_);
  if (new_samples_ > 0) {
    latest_ = sum_;
    latest_.watts /= new_samples_;
    for (auto& p : latest_.parts) p.second /= new_samples_;
    sum_ = PowerReading{};
    new_samples_ = 0;
    have_latest_ = true;
  }
  if (!have_latest_) return std::nullopt;
  return latest_;  // a step shorter than a sample gets the latest one
}

std::unique_ptr<PowerMeter> open_power_meter() {
#ifdef __APPLE__
  std::vector<std::string> cmd = {"powermetrics", "--samplers", "cpu_power,gpu_power,ane_power", "-i", "1000"};
  if (::geteuid() != 0) cmd.insert(cmd.begin(), {"sudo", "-n"});
  return std::make_unique<PowermetricsMeter>(cmd);
#else
  return std::make_unique<RaplMeter>();
#endif
}

}  // namespace anetrain
