// What the machine spends on a run, read between two steps: the process's CPU use and, where
// the kernel exposes it, package power from the RAPL energy counters (Linux powercap). Both are
// averages since the previous reading, so the trainer reads them once per step.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace anetrain {

// CPU time of this process (all threads, user + system) over wall time, in percent of one core:
// 200 means two cores busy the whole interval.
class CpuMeter {
 public:
  CpuMeter();
  double percent_since_last();

 private:
  double last_cpu_s_ = 0, last_wall_s_ = 0;
};

// Sums the package-level RAPL domains under `root` (intel-rapl:N, also what AMD exposes).
// Unreadable counters (no powercap, or energy_uj readable only by root) leave it unavailable,
// with the reason for the dashboard to show.
class PowerMeter {
 public:
  explicit PowerMeter(const std::string& root = "/sys/class/powercap");
  bool available() const { return !domains_.empty(); }
  const std::string& description() const { return description_; }  // what is summed, or why nothing
  // Average watts since the last call (or since construction); nullopt when unavailable or when
  // no time has passed.
  std::optional<double> watts_since_last();

 private:
  struct Domain {
    std::string energy_path;
    uint64_t range_uj = 0, last_uj = 0;
  };
  std::vector<Domain> domains_;
  std::string description_;
  double last_s_ = 0;
};

}  // namespace anetrain
