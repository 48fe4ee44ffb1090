#include "telemetry/efficiency.h"

#include <algorithm>
#include <cstdio>

namespace anetrain {

namespace {

std::string format(const char* fmt, double a, double b = 0, double c = 0, double d = 0, double e = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a, b, c, d, e);
  return buf;
}

// FLOPs in the unit that keeps them readable: GFLOP below a TFLOP, else TFLOP.
std::string flops_text(double flops) {
  return flops >= 1e12 ? format("%.2f TFLOP", flops / 1e12) : format("%.3g GFLOP", flops / 1e9);
}

std::string rate_text(double gflops) {
  return gflops >= 1000 ? format("%.2f TFLOP/s", gflops / 1000) : format("%.3g GFLOP/s", gflops);
}

}  // namespace

EfficiencyReport efficiency_report(const EfficiencyTotals& t) {
  EfficiencyReport r;
  r.totals = t;
  // A step's time is the accelerator's, staging, compiles that happened in it, and the host's
  // rest; clocks read at different places may disagree by microseconds, hence the floors.
  const double compile_in_steps = std::min(t.compile_in_steps_ms, t.compile_ms);
  const double cpu_ms = std::max(0.0, t.step_ms - t.compute_ms - t.staging_ms - compile_in_steps);
  const double accounted = t.compute_ms + t.staging_ms + t.compile_ms + cpu_ms;
  const double wall = std::max(t.wall_ms, accounted);
  if (wall > 0) {
    r.compute = t.compute_ms / wall;
    r.io = t.staging_ms / wall;
    r.compile = t.compile_ms / wall;
    r.cpu = cpu_ms / wall;
    r.other = (wall - accounted) / wall;
  } else {
    r.other = 1;  // nothing measured: no time to share out
  }
  if (t.steps > 0) {
    r.accelerator_flops_per_step = t.accelerator_flops / double(t.steps);
    // What the model's count has left once the accelerator's share of it is taken out.
    r.cpu_flops_per_step = std::max(0.0, t.model_flops - t.accelerator_model_flops) / double(t.steps);
  }
  if (t.step_ms > 0)
    r.achieved_gflops = (t.peak_is_accelerator ? t.accelerator_flops : t.model_flops) / (t.step_ms / 1000) / 1e9;
  if (t.peak_gflops > 0 && t.step_ms > 0) r.utilisation = r.achieved_gflops / t.peak_gflops;
  r.compile_ms_per_step = t.steps > 0 ? t.compile_ms / double(t.steps) : t.compile_ms;
  return r;
}

nlohmann::ordered_json efficiency_json(const EfficiencyReport& r) {
  const EfficiencyTotals& t = r.totals;
  return {{"steps", t.steps},
          {"wall_s", t.wall_ms / 1000},
          {"shares", {{"compute", r.compute}, {"compile", r.compile}, {"io", r.io}, {"cpu", r.cpu}, {"other", r.other}}},
          {"step_ms", t.step_ms},
          {"compute_ms", t.compute_ms},
          {"io_ms", t.staging_ms},
          {"matrix_flops_per_step", {{"accelerator", r.accelerator_flops_per_step}, {"cpu", r.cpu_flops_per_step}}},
          {"achieved_gflops", r.achieved_gflops},
          {"peak_gflops", t.peak_gflops},
          {"peak_on", t.peak_is_accelerator ? "accelerator" : "cpu"},
          {"peak_source", t.peak_source},
          {"utilisation", r.utilisation >= 0 ? nlohmann::ordered_json(r.utilisation) : nlohmann::ordered_json()},
          {"compiles", t.compiles},
          {"compile_ms", t.compile_ms},
          {"compile_ms_per_step", r.compile_ms_per_step}};
}

std::vector<std::string> efficiency_lines(const EfficiencyReport& r) {
  const EfficiencyTotals& t = r.totals;
  std::vector<std::string> lines;
  lines.push_back("efficiency: " + std::to_string(t.steps) + " steps in " + format("%.1f s", t.wall_ms / 1000) +
                  format(" — accelerator %.1f%%, compile %.1f%%, staging I/O %.1f%%, CPU %.1f%%, other %.1f%%",
                         100 * r.compute, 100 * r.compile, 100 * r.io, 100 * r.cpu, 100 * r.other));
  lines.push_back("  matrix FLOPs per step: " + flops_text(r.accelerator_flops_per_step) + " on the accelerator, " +
                  flops_text(r.cpu_flops_per_step) + " on the CPU");
  const std::string on = t.peak_is_accelerator ? " on the accelerator" : "";
  if (r.utilisation >= 0)
    lines.push_back("  " + rate_text(r.achieved_gflops) + on + format(" = %.1f%% of ", 100 * r.utilisation) +
                    rate_text(t.peak_gflops) + " (" + t.peak_source + ")");
  else
    lines.push_back("  " + rate_text(r.achieved_gflops) + on + "; " + t.peak_source);
  if (t.compiles > 0)
    lines.push_back("  compile: " + std::to_string(t.compiles) + " programs, " +
                    format("%.0f ms (%.2f ms per step over the run)", t.compile_ms, r.compile_ms_per_step));
  return lines;
}

}  // namespace anetrain
