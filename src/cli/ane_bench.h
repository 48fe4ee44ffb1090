// `anetrain ane bench`: the seed's Neural Engine benchmark sweeps (backends/ane/bench_programs.h)
// compiled, checked and timed on an executor, as a table or JSON. On the Neural Engine the times
// are the hardware's and give TFLOPS; on ane-sim or ane-fake they are the host's time simulating
// the programs, labelled so, and no throughput is derived from them.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace anetrain {

struct AneBenchOptions {
  bool as_json = false;
  bool quick = false;        // the seed's program shapes at a small size (quick_version)
  std::string sweep = "all";
  std::string executor;      // empty: the Neural Engine on a Mac build, else ane-sim
  int repeats = -1, warmup = -1;  // -1: the seed's 50 and 10 on hardware, 3 and 1 simulated
  double max_gflop = -1;     // -1: no limit on hardware, 50 simulated; 0: no limit
};

// Runs the sweeps; returns 1 when any program failed a check, was rejected or computed a wrong
// output, else 0.
int run_ane_bench(const AneBenchOptions& o);

// The report as text (ane_bench_report.cpp).
void print_ane_bench(const nlohmann::ordered_json& report);

// Registers `ane bench` under the `ane` command.
void add_ane_bench_command(CLI::App* ane, Command& run);

}  // namespace anetrain
