// `anetrain ane bench [--json] [--sweep peak|sram|int8|all] [--executor ane|ane-sim|ane-fake]
// [--quick] [--max-gflop G] [--repeats N] [--warmup N]`: every program of the chosen sweeps is
// type-checked, held against the Neural Engine's known limits (sim/limits.h) and the strict
// checker's proven set, then compiled, warmed up and timed on the executor (mean of the timed
// evaluations, as the seed's benchmarks reported), and — where a host fp32 computation of it is
// cheap — its output compared with that computation.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "backends/ane/bench_programs.h"
#include "backends/ane/make_executor.h"
#include "cli/ane_bench.h"
#include "cli/option_checks.h"
#include "core/error.h"
#include "mil/sim/limits.h"
#include "mil/strict.h"

namespace anetrain {

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kMiB = 1024.0 * 1024.0;
// The host reference is a plain fp32 loop; past this many FLOPs it would take longer than the run.
constexpr double kVerifyMaxFlops = 2e9;
// The output's rms for an input of rms 1: each layer's gain is random around 1 (a chain of 256
// layers of 256 channels drifts by well under 2× either way), so outside [1/8, 8] is an error.
constexpr double kRmsLow = 0.125, kRmsHigh = 8;
// sram_probe's mark: a weight size whose GFLOPS per MiB of weights falls below this is "spilling?".
constexpr double kSpillGflopsPerMiB = 100;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// ‖got − want‖ / ‖want‖ over the whole output.
double relative_l2_error(const float* got, const std::vector<float>& want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = double(got[i]) - want[i];
    diff += std::isfinite(got[i]) ? d * d : INFINITY;
    norm += double(want[i]) * want[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

// Each layer stores its output in fp16, a relative error of at most 2^-11 per element, and the
// chain's scaled random layers carry earlier errors on with a gain near 1: d layers stay within
// d · 2^-11 of an fp32 computation (a random walk is typically far inside it).
double error_bound(int depth) { return depth * std::ldexp(1.0, -11); }

struct Settings {
  std::string executor;
  bool simulated;
  int repeats, warmup;
  double max_flops;  // 0: none
  double peak_gflops;  // the chip's published fp16 peak (chip_peaks.h); 0: none claimed
};

// What the checks that need no weights say about a program: the proven set and the limits.
nlohmann::ordered_json static_checks(const ane::KernelProgram& k) {
  nlohmann::ordered_json problems = nlohmann::ordered_json::array();
  for (const mil::StrictFinding& f : mil::check_strict(k.program)) problems.push_back(format_finding(f, k.name));
  for (const sim::LimitViolation& v : sim::check_ane_limits(k.program))
    if (v.when != sim::When::warning) problems.push_back("[" + v.limit + "] " + v.message);
  return problems;
}

void time_and_verify(const ane::ConvChainSpec& spec, const Settings& s, nlohmann::ordered_json& row) {
  const ane::KernelProgram k = ane::conv_chain_program(spec);
  // One executor per program, so that a program's weights are released before the next is built.
  const std::unique_ptr<ane::Executor> ex = ane::make_executor(s.executor);
  auto t0 = Clock::now();
  const int h = ex->compile(k);
  row["compile_ms"] = ms_since(t0);
  const std::vector<float> x = ane::conv_chain_input(spec);
  mil::Tensor input = mil::Tensor::zeros(k.program.inputs[0].second);
  std::copy(x.begin(), x.end(), input.ptr());
  for (int i = 0; i < s.warmup; ++i) ex->evaluate(h, input);
  double total = 0, best = INFINITY;
  for (int i = 0; i < s.repeats; ++i) {
    t0 = Clock::now();
    ex->evaluate(h, input);
    const double ms = ms_since(t0);
    total += ms;
    best = std::min(best, ms);
  }
  const double ms = total / s.repeats;
  row[s.simulated ? "host_ms_simulated" : "ms_per_eval"] = ms;
  row[s.simulated ? "host_ms_simulated_best" : "ms_best"] = best;
  if (!s.simulated) {
    const double tera = spec.flops() / (ms * 1e-3) / 1e12;
    row[spec.precision == ane::ChainPrecision::w8a8 ? "tops" : "tflops"] = tera;
    // W8A8 against the fp16 peak too: the int8 rate's gain over fp16 is what the sweep measures.
    if (s.peak_gflops > 0) row["percent_of_fp16_peak"] = tera * 1e3 / s.peak_gflops * 100;
    if (spec.sweep == "sram") {
      const double per_mib = tera * 1e3 / (spec.weight_bytes() / kMiB);
      row["gflops_per_weight_mib"] = per_mib;
      row["spilling"] = per_mib < kSpillGflopsPerMiB;
    }
  }
  // Every output, compared or not, must be finite and keep the input's scale (the weights keep an
  // activation's variance; an rms far from 1 means a wrong chain, not a slow one).
  const mil::Tensor& got = ex->evaluate(h, input);
  double sq = 0;
  for (size_t i = 0; i < got.numel(); ++i) sq += double(got.ptr()[i]) * got.ptr()[i];
  const double rms = std::sqrt(sq / double(got.numel()));
  row["output_rms"] = std::isfinite(rms) ? nlohmann::ordered_json(rms) : nlohmann::ordered_json(nullptr);
  row["status"] = std::isfinite(rms) && rms > kRmsLow && rms < kRmsHigh ? "ok" : "wrong output: rms far from 1";
  if (spec.flops() > kVerifyMaxFlops) {
    row["verified"] = nullptr;
    return;
  }
  const double err = relative_l2_error(got.ptr(), ane::conv_chain_reference(spec, x));
  const bool ok = err <= error_bound(spec.depth);
  row["verified"] = {{"relative_l2_error", err}, {"bound", error_bound(spec.depth)}, {"ok", ok}};
  if (!ok) row["status"] = "wrong output: differs from the host fp32 computation";
}

nlohmann::ordered_json bench_one(const ane::ConvChainSpec& spec, const Settings& s) {
  nlohmann::ordered_json row = {{"sweep", spec.sweep},     {"config", spec.label()},       {"precision", spec.precision_name()},
                                {"channels", spec.channels}, {"height", spec.height},       {"width", spec.width},
                                {"depth", spec.depth},       {"flops", spec.flops()},       {"weight_mib", spec.weight_bytes() / kMiB},
                                {"activation_mib", spec.activation_bytes() / kMiB},         {"executor", s.executor}};
  const nlohmann::ordered_json problems = static_checks(ane::conv_chain_program(spec, false));
  row["checks"] = problems.empty() ? nlohmann::ordered_json("ok") : problems;
  if (!problems.empty()) {
    row["status"] = "fails the checks";
    return row;
  }
  if (s.max_flops > 0 && spec.flops() > s.max_flops) {
    char why[160];
    std::snprintf(why, sizeof why, "skipped: %.1f GFLOP is over --max-gflop %g", spec.flops() / 1e9, s.max_flops / 1e9);
    row["status"] = why;
    return row;
  }
  try {
    time_and_verify(spec, s, row);
  } catch (const ane::ProgramRejected& e) {
    row["status"] = std::string("rejected: ") + e.what();
  }
  return row;
}

// fp16 time / W8A8 time for each W8A8 row whose fp16 twin ran (the seed's "Ratio" column).
void add_int8_ratios(nlohmann::ordered_json& rows) {
  for (auto& w : rows) {
    if (w["precision"] != "w8a8" || !w.contains("ms_per_eval")) continue;
    for (const auto& f : rows)
      if (f["sweep"] == "int8" && f["precision"] == "fp16" && f["channels"] == w["channels"] && f["depth"] == w["depth"] &&
          f.contains("ms_per_eval"))
        w["fp16_over_w8a8"] = f["ms_per_eval"].get<double>() / w["ms_per_eval"].get<double>();
  }
}

}  // namespace

int run_ane_bench(const AneBenchOptions& o) {
  Settings s;
  s.executor = o.executor.empty() ? (ane::runtime_is_hardware() ? "ane" : "ane-sim") : o.executor;
  // An unknown or unbuilt executor is refused here, before any work.
  const MatrixPeak peak = ane::make_executor(s.executor)->peak();
  s.simulated = !(s.executor == "ane" && ane::runtime_is_hardware());
  s.peak_gflops = s.simulated ? 0 : peak.gflops;
  s.repeats = o.repeats > 0 ? o.repeats : o.quick ? 1 : s.simulated ? 3 : 50;
  s.warmup = o.warmup >= 0 ? o.warmup : o.quick ? 0 : s.simulated ? 1 : 10;
  const double max_gflop = o.max_gflop >= 0 ? o.max_gflop : s.simulated ? 50 : 0;
  s.max_flops = max_gflop * 1e9;
  std::vector<std::string> sweeps = o.sweep == "all" ? ane::bench_sweep_names() : std::vector<std::string>{o.sweep};

  nlohmann::ordered_json report = {{"command", "ane bench"}, {"executor", s.executor}, {"simulated", s.simulated}};
  report["time"] = s.simulated ? "host ms (simulated): the host's time running the simulator, not Neural Engine "
                                 "throughput; no TFLOPS or utilisation is derived from it"
                               : "ms per evaluation on this Mac's Neural Engine (mean of the timed evaluations)";
  report["fp16_peak_tflops"] = s.peak_gflops > 0 ? nlohmann::ordered_json(s.peak_gflops / 1e3) : nlohmann::ordered_json(nullptr);
  report["peak_source"] = s.simulated ? "simulated: no utilisation claimed" : peak.source;
  report["quick"] = o.quick;
  if (o.quick) report["quick_means"] = "the seed's program shapes with channels / 8 (at least 32) and depth / 16 (at least 2)";
  report["repeats"] = s.repeats;
  report["warmup"] = s.warmup;
  report["max_gflop"] = max_gflop;
  report["results"] = nlohmann::ordered_json::array();
  int failed = 0, skipped = 0;
  for (const std::string& sweep : sweeps)
    for (const ane::ConvChainSpec& seed : ane::seed_sweep(sweep)) {
      nlohmann::ordered_json row = bench_one(o.quick ? ane::quick_version(seed) : seed, s);
      const std::string status = row["status"];
      failed += status != "ok" && status.rfind("skipped", 0) != 0;
      skipped += status.rfind("skipped", 0) == 0;
      report["results"].push_back(std::move(row));
    }
  add_int8_ratios(report["results"]);
  report["failed"] = failed;
  report["skipped"] = skipped;
  if (o.as_json) std::printf("%s\n", report.dump(2).c_str());
  else print_ane_bench(report);
  return failed ? 1 : 0;
}

void add_ane_bench_command(CLI::App* ane, Command& run) {
  const auto o = std::make_shared<AneBenchOptions>();
  auto* b = ane->add_subcommand("bench", "The seed's Neural Engine benchmarks: the in-memory peak (1x1-conv chains), the "
                                         "weight-size (SRAM) sweep and INT8 W8A8 against fp16; simulated off macOS");
  b->add_flag("--json", o->as_json, "Print the results as JSON, one object per configuration");
  b->add_option("--sweep", o->sweep, "Which sweep")->capture_default_str()->check(CLI::IsMember({"peak", "sram", "int8", "all"}));
  b->add_option("--executor", o->executor, "ane (a Mac's Neural Engine), ane-sim or ane-fake (default: ane where built, "
                                           "else ane-sim)")
      ->check(CLI::IsMember({"ane", "ane-sim", "ane-fake"}));
  b->add_flag("--quick", o->quick, "Each configuration at a small size (channels / 8, depth / 16): a check, not a benchmark");
  b->add_option("--max-gflop", o->max_gflop, "Skip programs of more GFLOP than this (0: none; default 50 simulated, none "
                                             "on the Neural Engine)")
      ->check(within(Range::between(0, 1e9)));
  b->add_option("--repeats", o->repeats, "Timed evaluations per program (default 50 on the Neural Engine, 3 simulated)")
      ->check(within(Range::between(1, 100000).whole()));
  b->add_option("--warmup", o->warmup, "Untimed evaluations first (default 10 on the Neural Engine, 1 simulated)")
      ->check(within(Range::between(0, 100000).whole()));
  b->callback([&run, o] { run = [o] { return run_ane_bench(*o); }; });
}

}  // namespace anetrain
