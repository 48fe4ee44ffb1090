// What the machine spends on a run, read between two steps: the process's CPU use and, where the
// system exposes it, power — Linux's RAPL energy counters (powercap), or macOS's `powermetrics`
// (CPU, GPU and Neural Engine power; needs root, so it is run through `sudo -n`, which never
// prompts). Readings are averages since the previous one, so the trainer reads once per step.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
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

struct PowerReading {
  double watts = 0;                                   // the whole (package, or CPU+GPU+ANE)
  std::vector<std::pair<std::string, double>> parts;  // what it is made of, where known
};

class PowerMeter {
 public:
  virtual ~PowerMeter() = default;
  virtual bool available() const = 0;
  // What is measured ("RAPL package-0", "powermetrics: cpu + gpu + ane"), or why nothing is.
  virtual std::string description() const = 0;
  // Average since the last call; nullopt when there is no reading.
  virtual std::optional<PowerReading> since_last() = 0;
};

// This machine's source: RAPL on Linux; powermetrics on macOS.
std::unique_ptr<PowerMeter> open_power_meter();

// Sums the package-level RAPL domains under `root` (intel-rapl:N, also what AMD exposes), with
// the counters' wrap-around. Unreadable counters (no powercap, or readable only by root) leave it
// unavailable, with the reason.
class RaplMeter final : public PowerMeter {
 public:
  explicit RaplMeter(const std::string& root = "/sys/class/powercap");
  bool available() const override { return !domains_.empty(); }
  std::string description() const override { return description_; }
  std::optional<PowerReading> since_last() override;

 private:
  struct Domain {
    std::string name, energy_path;
    uint64_t range_uj = 0, last_uj = 0;
  };
  std::vector<Domain> domains_;
  std::string description_;
  double last_s_ = 0;
};

// powermetrics' text output, a line at a time: "CPU Power: 1234 mW", "GPU Power: …",
// "ANE Power: …", then "Combined Power (CPU + GPU + ANE): … mW" ends a sample (as does the next
// sample's "*** Sampled system activity" header when there is no combined line).
class PowermetricsParser {
 public:
  std::optional<PowerReading> feed(std::string_view line);

 private:
  PowerReading pending_;
  bool any_ = false;
};

// Runs `argv` (powermetrics, usually through `sudo -n`) and reads its samples on a thread. Waits
// up to `wait_first_s` for the first sample, so that a refusal (no root, no sudo rule) is known —
// and reported with the command's own words — before the run starts.
class PowermetricsMeter final : public PowerMeter {
 public:
  explicit PowermetricsMeter(std::vector<std::string> argv, double wait_first_s = 2.5);
  ~PowermetricsMeter() override;
  bool available() const override;
  std::string description() const override;
  std::optional<PowerReading> since_last() override;

 private:
  void read_output(int fd);
  int pid_ = -1;
  std::thread reader_;
  std::atomic<bool> stop_{false}, exited_{false}, reaped_{false};
  mutable std::mutex mu_;
  std::string last_text_, spawn_error_;
  PowerReading sum_, latest_;
  int new_samples_ = 0;
  bool have_latest_ = false;
};

}  // namespace anetrain
