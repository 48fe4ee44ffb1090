#include "telemetry/meters.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

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

}  // namespace

CpuMeter::CpuMeter() : last_cpu_s_(process_cpu_seconds()), last_wall_s_(wall_seconds()) {}

double CpuMeter::percent_since_last() {
  const double cpu = process_cpu_seconds(), wall = wall_seconds();
  const double pct = wall > last_wall_s_ ? 100.0 * (cpu - last_cpu_s_) / (wall - last_wall_s_) : 0.0;
  last_cpu_s_ = cpu;
  last_wall_s_ = wall;
  return pct;
}

PowerMeter::PowerMeter(const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    description_ = "no RAPL energy counters on this machine (" + root + " is absent)";
    return;
  }
  std::vector<std::string> names, unreadable;
  std::vector<fs::path> zones;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    // Package zones are "intel-rapl:N"; "intel-rapl:N:M" are their parts (cores, dram), already
    // inside the package's count.
    if (name.rfind("intel-rapl:", 0) == 0 && name.find(':', 11) == std::string::npos) zones.push_back(e.path());
  }
  std::sort(zones.begin(), zones.end());
  for (const auto& z : zones) {
    Domain d;
    d.energy_path = (z / "energy_uj").string();
    std::string label = z.filename().string();
    std::ifstream(z / "name") >> label;
    if (!read_number(d.energy_path, &d.last_uj) || !read_number((z / "max_energy_range_uj").string(), &d.range_uj)) {
      unreadable.push_back(label);
      continue;
    }
    names.push_back(label);
    domains_.push_back(d);
  }
  if (!domains_.empty()) {
    description_ = "RAPL";
    for (size_t i = 0; i < names.size(); ++i) description_ += (i ? " + " : " ") + names[i];
  } else if (!unreadable.empty()) {
    description_ = "RAPL counters present but not readable by this user (" + unreadable[0] + "; root can read them)";
  } else {
    description_ = "no RAPL package domains under " + root;
  }
  last_s_ = wall_seconds();
}

std::optional<double> PowerMeter::watts_since_last() {
  if (domains_.empty()) return std::nullopt;
  const double now = wall_seconds();
  double joules = 0;
  for (auto& d : domains_) {
    uint64_t e = 0;
    if (!read_number(d.energy_path, &e)) return std::nullopt;
    // The counter wraps at max_energy_range_uj.
    const uint64_t delta = e >= d.last_uj ? e - d.last_uj : e + d.range_uj - d.last_uj;
    joules += double(delta) * 1e-6;
    d.last_uj = e;
  }
  const double dt = now - last_s_;
  last_s_ = now;
  if (dt <= 0) return std::nullopt;
  return joules / dt;
}

}  // namespace anetrain
