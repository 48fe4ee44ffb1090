// The hardware executor: the seed's compile / load / evaluate / unload sequence over PrivateApi.
//   open:     the framework loaded and every class and selector the runtime calls checked; a
//             missing one is named, with the macOS version, instead of crashing in objc_msgSend.
//   compile:  MIL text + weights dictionary → descriptor → in-memory model; the model's temp
//             folder <tmp>/<id>/ populated with model.mil and weights/* (model_folder.h);
//             compileWithQoS then loadWithQoS (the load retried once after 100 ms); one input and
//             one output IOSurface of the program's exact byte sizes, and a request binding them.
//             A failure at any step unloads, releases and removes what the step had made.
//   evaluate: fp16 (or fp32) conversion into the locked input surface, evaluateWithQoS (retried
//             once), and back. Staged inputs (executor.h) are the seed's per-layer surfaces: each
//             has its own input IOSurface and a request binding it to the program's output surface.
//   teardown: unload, release, and the temp folder removed (if this process created it).
// Compiles are counted per process; past kSafeCompiles it refuses with a clear error instead of
// letting the compiler fail at ~119 (as the original system measured on real Macs).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backends/ane/executor.h"
#include "backends/ane/runtime/private_api.h"

namespace anetrain::ane {

constexpr int kSafeCompiles = 110;
constexpr unsigned kQoS = 21;  // the quality of service every trainer of the original system passed

class AneRuntime final : public Executor {
 public:
  // `safe_compiles`: the per-process count past which compile() refuses (tests lower it).
  explicit AneRuntime(std::unique_ptr<PrivateApi> api, int safe_compiles = kSafeCompiles);
  ~AneRuntime() override;
  std::string name() const override { return "ane"; }
  std::string platform() const { return api_->platform(); }
  int compile(const KernelProgram& k) override;
  const mil::Tensor& evaluate(int handle, const mil::Tensor& input) override;
  int compiles() const override { return int(programs_.size()); }
  int open_staged(int handle, int activation_columns) override;
  void write_weights(int staged, const mil::Tensor& input) override;
  const mil::Tensor& evaluate_staged(int staged, const mil::Tensor& activations) override;
  static int process_compiles();
  // As if the process had restarted: the count starts over. For test binaries, where one process
  // runs what would be many processes (CTest runs each test in its own).
  static void reset_process_compiles();
  int evaluate_retries() const { return evaluate_retries_; }  // evaluations that succeeded only when retried

  using Timing = CompileTiming;
  const Timing& timing(int handle) const;
  CompileTiming compile_timing(int handle) const override { return timing(handle); }
  // The chip's published peak (chip_peaks.h) when the framework names a chip; none for the fake.
  MatrixPeak peak() const override;

 private:
  class Handle;
  struct Loaded;
  struct Staged;
  const mil::Type& input_type(int handle) const override;
  std::string program_name(int handle) const override;
  void check_framework();
  // Converts columns [first, first + count) of every channel of `src` into `surface`, laid out
  // as `type`; returns the bytes written.
  uint64_t write_columns(const Loaded& p, ApiHandle surface, const mil::Tensor& src, int64_t first, int64_t count);
  const mil::Tensor& run(Loaded& p, ApiHandle request);

  std::unique_ptr<PrivateApi> api_;  // first: everything below is released through it
  int safe_compiles_;
  int evaluate_retries_ = 0;
  std::vector<std::unique_ptr<Loaded>> programs_;
  std::vector<std::unique_ptr<Staged>> staged_;  // after programs_: their requests go first
};

}  // namespace anetrain::ane
