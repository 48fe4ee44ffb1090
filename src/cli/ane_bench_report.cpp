// `anetrain ane bench` as a table per sweep. A simulated run's time column is headed "host ms
// (simulated)" and no throughput column is printed: the simulator's time is the host's, and
// quoting it as Neural Engine speed would be false.
#include <cstdio>
#include <string>

#include "cli/ane_bench.h"
#include "core/terminal_text.h"

namespace anetrain {

namespace {

std::string sweep_title(const std::string& sweep, bool simulated) {
  if (sweep == "peak") return "peak: chains of 1x1 convs in one program (inmem_peak), then single convs (inmem_bench)";
  if (sweep == "sram")
    return std::string("sram: one conv per weight size (sram_probe)") +
           (simulated ? "" : "; under 100 GFLOPS per MiB of weights = spilling?");
  return std::string("int8: the same chain in fp16 and W8A8 (ane_int8_bench)") +
         (simulated ? "" : "; W8A8 in TOPS, ratio = fp16 ms / W8A8 ms");
}

std::string check_text(const nlohmann::ordered_json& r) {
  const std::string status = r["status"];
  if (status != "ok") return status == "fails the checks" ? status + ": " + r["checks"][0].get<std::string>() : status;
  if (r["verified"].is_null()) return "ok (not compared: too large for the host reference)";
  char buf[96];
  std::snprintf(buf, sizeof buf, "ok, matches host fp32 (rel err %.2g <= %.2g)", r["verified"]["relative_l2_error"].get<double>(),
                r["verified"]["bound"].get<double>());
  return buf;
}

}  // namespace

void print_ane_bench(const nlohmann::ordered_json& report) {
  const bool simulated = report["simulated"];
  std::printf("ane bench on %s%s\n", report["executor"].get<std::string>().c_str(),
              simulated ? " -- SIMULATED: times are host ms, not Neural Engine speed; no TFLOPS claimed" : "");
  if (report["quick"]) std::printf("quick: %s\n", report["quick_means"].get<std::string>().c_str());
  std::string sweep;
  for (const auto& r : report["results"]) {
    if (r["sweep"] != sweep) {
      sweep = r["sweep"];
      std::printf("\n%s\n", sweep_title(sweep, simulated).c_str());
      if (simulated) std::printf("  %-24s %9s %9s %20s  %s\n", "config", "W (MiB)", "GFLOP", "host ms (simulated)", "check");
      else std::printf("  %-24s %9s %9s %10s %9s %7s %12s  %s\n", "config", "W (MiB)", "GFLOP", "ms/eval", "TFLOPS",
                       "% peak", sweep == "sram" ? "GFLOPS/MiB" : sweep == "int8" ? "fp16/W8A8" : "", "check");
    }
    const std::string config = r["config"];
    const double mib = r["weight_mib"], gflop = r["flops"].get<double>() / 1e9;
    const std::string check = terminal_safe(check_text(r));
    const char* key = simulated ? "host_ms_simulated" : "ms_per_eval";
    if (!r.contains(key)) {
      std::printf("  %-24s %9.2f %9.2f %20s  %s\n", config.c_str(), mib, gflop, "-", check.c_str());
    } else if (simulated) {
      std::printf("  %-24s %9.2f %9.2f %20.3f  %s\n", config.c_str(), mib, gflop, r[key].get<double>(), check.c_str());
    } else {
      const double tera = r.contains("tops") ? r["tops"].get<double>() : r["tflops"].get<double>();
      char extra[32] = "";
      if (r.contains("gflops_per_weight_mib"))
        std::snprintf(extra, sizeof extra, "%.0f%s", r["gflops_per_weight_mib"].get<double>(), r["spilling"] ? " spill?" : "");
      if (r.contains("fp16_over_w8a8")) std::snprintf(extra, sizeof extra, "%.2fx", r["fp16_over_w8a8"].get<double>());
      char percent[16] = "-";
      if (r.contains("percent_of_fp16_peak")) std::snprintf(percent, sizeof percent, "%.1f", r["percent_of_fp16_peak"].get<double>());
      std::printf("  %-24s %9.2f %9.2f %10.3f %9.2f %7s %12s  %s\n", config.c_str(), mib, gflop, r[key].get<double>(), tera,
                  percent, extra, check.c_str());
    }
  }
  if (!simulated) std::printf("\n%% peak: of %s\n", terminal_safe(report["peak_source"].get<std::string>()).c_str());
  std::printf("\n%d failed, %d skipped. %s\n", report["failed"].get<int>(), report["skipped"].get<int>(),
              report["time"].get<std::string>().c_str());
}

}  // namespace anetrain
