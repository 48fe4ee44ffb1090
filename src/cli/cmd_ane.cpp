// `anetrain ane probe [--json]`: what the seed's probes and community benchmark measured, in one
// command. Compiles a few programs on the Neural Engine (on macOS) — a dynamic matmul (weights in
// the input, as training runs), an fp16 1×1-conv chain with baked weights and the same chain in
// W8A8 (int8 weights through constexpr_affine_dequantize, activations quantized between layers)
// — times compile, load and evaluation, reports TFLOP/s, and checks every output against ane-sim.
// Off macOS the same runtime code runs against the fake framework over ane-sim, and says so.
// `anetrain ane bench`: the seed's benchmark sweeps (cli/ane_bench.h).
// `anetrain ane dump MODEL DIR [--seq T] [--batch B]`: every program the ane backend compiles for
// MODEL, with a reference input and ane-sim's output for it (cli/ane_dump.h).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>

#include <nlohmann/json.hpp>

#include "backends/ane/make_executor.h"
#include "backends/ane/programs.h"
#include "cli/ane_bench.h"
#include "cli/ane_dump.h"
#include "cli/ane_probe.h"
#include "cli/commands.h"
#include "mil/blob.h"
#include "mil/builder.h"
#include "mil/fp16.h"
#include "mil/stats.h"

namespace anetrain {
namespace {

using ane::KernelProgram;
using mil::ElemType;
using mil::Type;
using mil::Var;

// Two 1×1 convs of C channels over S positions with baked weights: fp16, or int8 weights with the
// activation quantized and dequantized between the layers (the seed's ane_int8_bench chain).
KernelProgram conv_chain(int C, int S, bool w8a8, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> q(-127, 127);
  const double scale = 1.0 / (127.0 * std::sqrt(double(C)));
  mil::Builder b;
  KernelProgram k;
  Var x = b.input("x", Type::of(ElemType::fp16, {1, C, 1, S}));
  std::vector<Var> w;
  for (int layer = 0; layer < 2; ++layer) {
    std::vector<int8_t> ints(size_t(C) * C);
    for (auto& v : ints) v = int8_t(q(rng));
    const std::string file = "weights/w" + std::to_string(layer) + ".bin";
    mil::BlobWriter blob;
    if (w8a8) {
      blob.add_int8(ints);
      w.push_back(b.affine_dequantize("w" + std::to_string(layer), Type::of(ElemType::int8, {C, C, 1, 1}),
                                      "@model_path/" + file, 64, scale));
    } else {
      std::vector<float> f(ints.size());
      for (size_t i = 0; i < f.size(); ++i) f[i] = float(ints[i] * scale);
      blob.add_fp16(f.data(), f.size());
      w.push_back(b.blob("w" + std::to_string(layer), Type::of(ElemType::fp16, {C, C, 1, 1}), "@model_path/" + file, 64));
    }
    k.blobs[file] = blob.bytes();
  }
  Var h = b.conv(x, w[0], 1, "h");
  if (w8a8) h = b.dequantize(b.quantize(h, 1.0 / 32, "hq"), 1.0 / 32, "hd");
  k.program = b.finish({b.conv(h, w[1], 1, "y")});
  k.name = w8a8 ? "conv_chain_w8a8" : "conv_chain_fp16";
  return k;
}

int probe(bool as_json, int repeats) {
  bool real = false;
  const std::unique_ptr<ane::AneRuntime> runtime = open_probe_runtime(real);
  ane::AneRuntime& rt = *runtime;
  const std::unique_ptr<ane::Executor> reference = ane::make_executor("ane-sim");
  std::vector<KernelProgram> programs = {ane::linear_program(768, 768, 256), conv_chain(512, 256, false, 1),
                                         conv_chain(512, 256, true, 1)};
  programs[0].name = "dynamic_matmul_768x768_T256";
  nlohmann::json out = {{"runtime", real ? "ane" : "ane-sim (fake runtime)"}, {"platform", rt.platform()}};
  std::map<std::string, double> eval_ms;
  for (const KernelProgram& k : programs) {
    int h = rt.compile(k);
    mil::Tensor in = mil::Tensor::zeros(k.program.inputs[0].second);
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& v : *in.data) v = nd(rng);
    mil::round_to_fp16(in.ptr(), in.numel());
    rt.evaluate(h, in);  // first evaluation: excluded from the timing, as the seed's probes do
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      rt.evaluate(h, in);
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    const mil::Tensor& got = rt.evaluate(h, in);
    const mil::Tensor& want = reference->evaluate(reference->compile(k), in);
    double diff = 0, scale = 0;
    for (size_t i = 0; i < want.numel(); ++i) {
      diff = std::max(diff, double(std::fabs(got.ptr()[i] - want.ptr()[i])));
      scale = std::max(scale, double(std::fabs(want.ptr()[i])));
    }
    const double flops = mil::program_stats(k.program).matrix_flops;
    eval_ms[k.name] = best;
    out["programs"].push_back({{"name", k.name}, {"compile_ms", rt.timing(h).compile_ms}, {"load_ms", rt.timing(h).load_ms},
                               {"eval_ms", best}, {"tflops", flops / (best * 1e-3) / 1e12},
                               {"max_abs_diff_vs_ane_sim", diff}, {"output_scale", scale}});
  }
  out["w8a8_speedup_vs_fp16"] = eval_ms["conv_chain_fp16"] / eval_ms["conv_chain_w8a8"];
  out["note"] = real ? "measured on this Mac's Neural Engine" : "no Neural Engine here: the numbers are the simulator's on this CPU, "
                                                             "through the same runtime code (compile, load, IOSurfaces, requests)";
  if (as_json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("ane probe: %s (%s)\n", out["platform"].get<std::string>().c_str(), out["runtime"].get<std::string>().c_str());
  for (const auto& p : out["programs"])
    std::printf("  %-30s compile %7.1f ms  load %6.1f ms  eval %8.3f ms  %7.3f TFLOP/s  max |diff| vs ane-sim %.3g (scale %.3g)\n",
                p["name"].get<std::string>().c_str(), p["compile_ms"].get<double>(), p["load_ms"].get<double>(),
                p["eval_ms"].get<double>(), p["tflops"].get<double>(), p["max_abs_diff_vs_ane_sim"].get<double>(),
                p["output_scale"].get<double>());
  std::printf("  W8A8 / fp16 conv chain speed-up: %.2f×\n  %s\n", out["w8a8_speedup_vs_fp16"].get<double>(),
              out["note"].get<std::string>().c_str());
  return 0;
}

}  // namespace

void add_ane_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("ane", "The Apple Neural Engine: probe or benchmark the hardware (or the simulator off "
                                        "macOS); dump a model's programs");
  cmd->require_subcommand(1);
  struct Options {
    bool as_json = false;
    int repeats = 10, probe_seq = 256;
    std::string probe_model_spec;
    std::string model, dir;
    int seq = 256, batch = 1;
  };
  const auto o = std::make_shared<Options>();
  auto* p = cmd->add_subcommand("probe", "Compile, load and time a few programs (or, with --model, every program of a "
                                         "model); check their numbers against ane-sim");
  p->add_flag("--json", o->as_json, "Print the report as JSON");
  p->add_option("--repeats", o->repeats, "Timed evaluations per program (best is reported)")->capture_default_str()->check(CLI::PositiveNumber);
  p->add_option("--model", o->probe_model_spec,
                "Every program the ane backend compiles for this model (training and generation), one row each");
  p->add_option("--seq", o->probe_seq, "With --model: tokens per sequence of the training programs")
      ->capture_default_str()->check(CLI::Range(1, 65536));
  p->callback([&run, o] {
    run = [o] { return o->probe_model_spec.empty() ? probe(o->as_json, o->repeats) : probe_model(o->probe_model_spec, o->probe_seq, o->as_json); };
  });

  add_ane_bench_command(cmd, run);

  auto* d = cmd->add_subcommand("dump", "Write every program the ane backend compiles for MODEL (training and layer 0's "
                                        "generation kernels) with a reference input, ane-sim's output and a manifest");
  d->add_option("model", o->model, "Preset, model config .json, HF folder, llama2.c .bin, GGUF, or anetrain checkpoint")->required();
  d->add_option("dir", o->dir, "Folder to write (new, empty, or an earlier dump)")->required();
  d->add_option("--seq", o->seq, "Tokens per sequence the training programs take")->capture_default_str()->check(CLI::Range(1, 65536));
  d->add_option("--batch", o->batch, "Sequences per micro-batch (each is one evaluation)")->capture_default_str()->check(CLI::Range(1, 4096));
  d->callback([&run, o] {
    run = [o] {
      const int n = ane_dump::dump(o->model, o->dir, o->seq, o->batch);
      std::printf("ane dump: %d programs of %s (seq %d) in %s; see %s/manifest.json\n", n, o->model.c_str(), o->seq, o->dir.c_str(),
                  o->dir.c_str());
      return 0;
    };
  });
}

}  // namespace anetrain
