// The end-of-run efficiency report, on every backend: where a run's wall time went, how many
// matrix FLOPs each step ran on the accelerator and on the CPU, the rate against the peak the
// backend names (none claimed where it names none: simulators), and what compiling the
// accelerator's programs cost per step. The session adds up what it already measures (step
// times, the kernels' evaluation and staging times, the programs' compile and load times); this
// turns the sums into the report, the `efficiency` telemetry event and the lines `train` prints.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "telemetry/jsonl.h"

namespace anetrain {

// What a run measured, summed over this process's part of it.
struct EfficiencyTotals {
  double wall_ms = 0;             // from opening the run to its end
  int64_t steps = 0;              // optimizer steps trained
  double step_ms = 0;             // their wall times
  double compute_ms = 0;          // the accelerator evaluating programs, during steps
  double staging_ms = 0;          // inputs and outputs between the host's layout and the programs', during steps
  double compile_ms = 0;          // compiling and loading programs, whenever it happened
  double compile_in_steps_ms = 0; // the part of compile_ms that happened inside steps
  int64_t compiles = 0;           // programs compiled and loaded
  double accelerator_flops = 0;   // matrix FLOPs the programs ran during steps (padded shapes)
  double accelerator_model_flops = 0;  // the part of model_flops those evaluations stand for
  double model_flops = 0;         // the model's training FLOPs over those steps (model/flops.h)
  double peak_gflops = 0;         // 0: no utilisation claimed
  bool peak_is_accelerator = false;
  std::string peak_source;        // where the peak comes from, or why there is none
};

struct EfficiencyReport {
  // Shares of wall time; they sum to 1. `cpu` is the rest of the steps (the host's work: on a cpu
  // backend the whole step), `other` what is outside steps and compiles (setup, evaluation,
  // samples, checkpoints).
  double compute = 0, compile = 0, io = 0, cpu = 0, other = 0;
  double accelerator_flops_per_step = 0, cpu_flops_per_step = 0;
  double achieved_gflops = 0;       // the FLOPs the peak applies to, over the steps' time
  double utilisation = -1;          // achieved / peak; -1 when none is claimed
  double compile_ms_per_step = 0;   // compile amortisation: compile time / steps
  EfficiencyTotals totals;
};

EfficiencyReport efficiency_report(const EfficiencyTotals& t);
// The `efficiency` event's fields.
nlohmann::ordered_json efficiency_json(const EfficiencyReport& r);
// The report as `train` prints it at the end, a few lines.
std::vector<std::string> efficiency_lines(const EfficiencyReport& r);

}  // namespace anetrain
