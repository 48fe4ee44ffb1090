// The hardware executor: the seed's compile / load / evaluate / unload sequence over PrivateApi.
//   compile: MIL text + weights dictionary → descriptor → in-memory model; the model's temp
//            folder <tmp>/<id>/ populated with model.mil and weights/* (the compiler reads it);
//            compileWithQoS then loadWithQoS (the load retried once after 100 ms); one input and
//            one output IOSurface of the program's exact byte sizes, and a request binding them.
//   evaluate: fp16 (or fp32) conversion into the locked input surface, evaluateWithQoS, and back.
//   teardown: unload, release, and the temp folder removed.
// Compiles are counted per process; past kSafeCompiles it refuses with a clear error instead of
// letting the compiler fail at ~119 (seed-system.md 8.6).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "ane/kernels/executor.h"
#include "ane/runtime/private_api.h"

namespace anetrain::ane {

constexpr int kSafeCompiles = 110;
constexpr unsigned kQoS = 21;  // what every seed trainer passes (seed-system.md 8.5)

class AneRuntime final : public Executor {
 public:
  // `safe_compiles`: the per-process count past which compile() refuses (tests lower it).
  explicit AneRuntime(std::unique_ptr<PrivateApi> api, int safe_compiles = kSafeCompiles);
  ~AneRuntime() override;
  std::string name() const override { return "ane"; }
  std::string platform() const { return api_->platform(); }
  int compile(const KernelProgram& k) override;
  const sim::Tensor& evaluate(int handle, const sim::Tensor& input) override;
  int compiles() const override { return int(programs_.size()); }
  static int process_compiles();

  struct Timing {
    double compile_ms = 0, load_ms = 0;
  };
  const Timing& timing(int handle) const;

 private:
  struct Loaded;
  std::unique_ptr<PrivateApi> api_;
  int safe_compiles_;
  std::vector<std::unique_ptr<Loaded>> programs_;
};

}  // namespace anetrain::ane
