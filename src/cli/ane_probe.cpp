// `anetrain ane probe --model M [--seq T] [--json]`: every program the ane backend compiles for a
// model, each compiled, loaded and evaluated on the Neural Engine (off macOS: the same runtime
// code over the fake framework and ane-sim, and the report says so) with the input the backend
// gave it, and checked against ane-sim's output for that input. One row per program: compile,
// load and evaluation times, the largest error relative to the output's scale, and a status a
// Mac user can paste into a bug report.
#include <chrono>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "backends/ane/make_executor.h"
#include "cli/ane_probe.h"
#include "cli/ane_dump.h"
#include "core/terminal_text.h"
#include "formats/load.h"

namespace anetrain {

namespace {

// fp16 programs on hardware against the simulator's fp16 semantics: the hardware may accumulate
// in another order, so a few fp16 ulps of the output's scale (2^-11 ≈ 4.9e-4 each) are expected;
// 1e-2 leaves room for that and for a softmax, while a wrong result misses it by far.
constexpr double kAgreement = 1e-2;

double max_relative_error(const mil::Tensor& got, const mil::Tensor& want) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < want.numel(); ++i) {
    const double g = got.ptr()[i], w = want.ptr()[i];
    diff = std::max(diff, std::isfinite(g) ? std::fabs(g - w) : INFINITY);
    scale = std::max(scale, std::fabs(w));
  }
  return scale > 0 ? diff / scale : diff;
}

}  // namespace

std::unique_ptr<ane::AneRuntime> open_probe_runtime(bool& real) {
  real = ane::runtime_is_hardware();
  return ane::make_runtime(ane::hardware_runtime_name());
}

int probe_model(const std::string& model, int T, bool as_json) {
  bool real = false;
  const std::unique_ptr<ane::AneRuntime> runtime = open_probe_runtime(real);
  ane::AneRuntime& rt = *runtime;
  LoadedModel loaded = load_model(model);
  const auto programs = ane_dump::record_programs(*loaded.model, T, 1);
  nlohmann::ordered_json out = {{"model", model}, {"seq", T}, {"runtime", real ? "ane" : "ane-sim (fake runtime)"},
                                {"platform", rt.platform()}};
  int failed = 0;
  for (const auto& p : programs) {
    nlohmann::ordered_json row = {{"name", p.k.name}};
    try {
      const int h = rt.compile(p.k);
      row["compile_ms"] = rt.timing(h).compile_ms;
      row["load_ms"] = rt.timing(h).load_ms;
      const auto t0 = std::chrono::steady_clock::now();
      const mil::Tensor& got = rt.evaluate(h, p.input);
      row["eval_ms"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      const double err = max_relative_error(got, p.output);
      row["max_rel_error"] = err;
      row["status"] = err <= kAgreement ? "ok" : "differs from ane-sim";
    } catch (const std::exception& e) {
      row["status"] = "rejected";
      row["error"] = e.what();  // the runtime's message: NSError description, domain and code
    }
    failed += row["status"] != "ok";
    out["programs"].push_back(row);
  }
  out["failed"] = failed;
  out["note"] = real ? "measured on this Mac's Neural Engine; outputs checked against ane-sim"
                     : "no Neural Engine here: the simulator ran the programs through the same runtime code "
                       "(compile, load, IOSurfaces, requests); run this on a Mac for the hardware's answer";
  if (as_json) {
    std::printf("%s\n", out.dump(2).c_str());
    return failed ? 1 : 0;
  }
  std::printf("ane probe %s (seq %d): %s (%s)\n", terminal_safe(model).c_str(), T,
              out["platform"].get<std::string>().c_str(), out["runtime"].get<std::string>().c_str());
  std::printf("  %-28s %10s %9s %10s %12s  %s\n", "program", "compile ms", "load ms", "eval ms", "max rel err", "status");
  for (const auto& r : out["programs"]) {
    if (r["status"] == "rejected") {
      std::printf("  %-28s %10s %9s %10s %12s  rejected: %s\n", r["name"].get<std::string>().c_str(), "-", "-", "-", "-",
                  terminal_safe(r["error"].get<std::string>()).c_str());
      continue;
    }
    std::printf("  %-28s %10.1f %9.1f %10.3f %12.3g  %s\n", r["name"].get<std::string>().c_str(),
                r["compile_ms"].get<double>(), r["load_ms"].get<double>(), r["eval_ms"].get<double>(),
                r["max_rel_error"].get<double>(), r["status"].get<std::string>().c_str());
  }
  std::printf("  %d of %zu programs ok. %s\n", int(programs.size()) - failed, programs.size(),
              out["note"].get<std::string>().c_str());
  return failed ? 1 : 0;
}

}  // namespace anetrain
