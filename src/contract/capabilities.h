// What a backend is beyond the ops and stages every backend has: plain facts (the precision and
// numerics it computes with, whether its stages are fused programs) and optional sub-interfaces,
// each nullptr when the backend has none. Generic code (train/, gen/, cli/, capi/) decides from
// these, never from a backend's name, so a new backend states what it is here and nothing else
// needs to know it exists.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "contract/tensors.h"
#include "core/dtype.h"

namespace anetrain {

// How closely a backend can follow `ref`.
struct Numerics {
  bool fp16 = false;          // stages run in fp16 (training then needs loss scaling)
  double stage_rtol = 1e-4;   // a stage's outputs and gradients vs ref, relative to each tensor's scale
  double linear_rtol = 1e-4;  // the same for the linear ops (bf16 products round their inputs)
};

// The model's fp32 master weights as one arena (Model::params) and the version that names their
// current values (Model::version: moved by init, checkpoint load and every optimizer step).
struct WeightsView {
  const float* data = nullptr;
  size_t count = 0;
  uint64_t version = 0;
  // Through integers: ordering pointers into unrelated buffers is unspecified in C++.
  bool contains(const float* p, size_t n) const {
    const auto a = reinterpret_cast<uintptr_t>(data), q = reinterpret_cast<uintptr_t>(p);
    return data && q >= a && q - a + n * sizeof(float) <= count * sizeof(float);
  }
};

// A backend that keeps a bf16 copy of the weight arena for its products (cpu in bf16). The
// optimizer writes the new weights' bf16 values in the same pass that computes them, so the
// backend need not read the whole arena again before the next product.
class WeightMirror {
 public:
  // Room for w.count bf16 values, or nullptr when the backend keeps no copy of these weights
  // (too large to keep, say). Until copy_filled, the copy holds no version's values.
  virtual uint16_t* bf16_copy(const WeightsView& w) = 0;
  // The caller wrote weights `version` into the copy.
  virtual void copy_filled(uint64_t version) = 0;
  // Whether the copy holds weights `version`'s values (every one of them). A writer that changes
  // only some weights may then leave the others' copies as they are.
  virtual bool holds(uint64_t version) const { return false; }

 protected:
  ~WeightMirror() = default;
};

// Time spent in one fused kernel since the last take_kernel_timings(): evaluations, the time the
// executor ran (eval_ms) and the time spent packing inputs and unpacking outputs (io_ms); the
// matrix FLOPs the programs ran (flops: their padded shapes, the whole causal square) and those
// of the model's own count (model/flops.h) that the evaluations stand for (model_flops), so that
// the rest of a step's count is what the CPU ran.
struct KernelTiming {
  std::string name;
  int64_t calls = 0;
  double eval_ms = 0, io_ms = 0, flops = 0, model_flops = 0;
};

// The matrix-product rate a backend's utilisation is measured against, and whose it is.
struct MatrixPeak {
  double gflops = 0;         // 0: no utilisation is claimed (`source` says why)
  bool accelerator = false;  // the accelerator's (compare its programs' FLOPs), else the CPU's (the step's)
  std::string source;        // where the figure comes from, or why there is none
};

// What a backend measures of itself, for telemetry and the dashboard.
class Profiler {
 public:
  // Per-kernel timings since the last call (empty for a backend that does not time its kernels);
  // resets them.
  virtual std::vector<KernelTiming> take_kernel_timings() { return {}; }
  // The measured matrix-product rate in GFLOP/s at a large, well-shaped product in the backend's
  // precision (the dashboard's utilisation is a step's GFLOP/s over this); 0 = not measured.
  virtual double matrix_peak_gflops() { return 0; }
  // The peak with its provenance. By default the measured CPU rate above (measured anew: call it
  // once per run).
  virtual MatrixPeak matrix_peak() {
    const double g = matrix_peak_gflops();
    return {g, false, g > 0 ? "measured on this CPU at start" : "not measured"};
  }

 protected:
  ~Profiler() = default;
};

// One program the hardware rejected, and the stage that runs on the CPU instead.
struct ProgramFallback {
  std::string program;  // the program's name, e.g. "attention_bwd", "linear_768x2048"
  std::string kernel;   // the stage's kernel in telemetry: "attention_bwd", "qkv_fwd", ...
  std::string step;     // "compile" (compile or load) or "evaluate"
  std::string reason;   // the runtime's error (NSError description, domain, code on a Mac)
  std::string kept;     // where the rejected program's .mil and weights were kept, "" if not
};

// One program compiled and loaded for the accelerator, and what that took.
struct ProgramCompile {
  std::string program;  // the program's name
  std::string kernel;   // the stage's kernel in telemetry that first needed it
  double compile_ms = 0, load_ms = 0;
};

// A backend that runs stages as programs compiled for an accelerator (the ANE's), which may
// reject some of them.
class CompiledPrograms {
 public:
  // Compile every program a training step at these block shapes runs, before step 0, so that all
  // the programs the hardware rejects are known — and reported together — at once; likewise the
  // one-token programs of a layer before the first generated token.
  virtual void prepare_training(const BlockDims& d) = 0;
  virtual void prepare_decoding(const BlockDims& d, const LayerTensors& w) = 0;
  // A stage whose program the hardware rejects (compile, load or evaluate) runs on the CPU
  // instead; with fallback off, a rejection is an error.
  virtual void allow_program_fallback(bool allowed) = 0;
  // The stages that fell back since the last call, for telemetry and the progress line.
  virtual std::vector<ProgramFallback> take_fallbacks() = 0;
  // The programs compiled since the last call (successful compiles only), for telemetry.
  virtual std::vector<ProgramCompile> take_compiles() { return {}; }

 protected:
  ~CompiledPrograms() = default;
};

struct Capabilities {
  // The precision a run asked it for (BackendOptions::precision): bf16 is mixed precision.
  Precision precision = Precision::fp32;
  Numerics numerics;
  // Its stages are fused kernels and they are its point (the ANE's programs): a decoder runs them
  // on the fp32 model rather than the packed products (gen/decode_weights.h).
  bool fused_stages = false;
  WeightMirror* weight_mirror = nullptr;
  Profiler* profiler = nullptr;
  CompiledPrograms* programs = nullptr;
};

// The calls generic code makes through the optional interfaces, each doing nothing (or returning
// the empty answer) for a backend without the interface.
inline std::vector<KernelTiming> take_kernel_timings(const Capabilities& c) {
  return c.profiler ? c.profiler->take_kernel_timings() : std::vector<KernelTiming>{};
}
inline double matrix_peak_gflops(const Capabilities& c) { return c.profiler ? c.profiler->matrix_peak_gflops() : 0; }
inline MatrixPeak matrix_peak(const Capabilities& c) {
  return c.profiler ? c.profiler->matrix_peak() : MatrixPeak{0, false, "not measured"};
}
inline std::vector<ProgramCompile> take_compiles(const Capabilities& c) {
  return c.programs ? c.programs->take_compiles() : std::vector<ProgramCompile>{};
}
inline std::vector<ProgramFallback> take_fallbacks(const Capabilities& c) {
  return c.programs ? c.programs->take_fallbacks() : std::vector<ProgramFallback>{};
}

}  // namespace anetrain
