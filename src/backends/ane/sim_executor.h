// The executor of ane-sim: programs compiled by the simulator (mil/sim/), the one executor that
// needs it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backends/ane/executor.h"
#include "mil/sim/compiler.h"

namespace anetrain::ane {

// Compiles with the process's sim::Compiler (which counts toward the compile budget); weights
// are read once, at compile time.
class SimExecutor final : public Executor {
 public:
  std::string name() const override { return "ane-sim"; }
  int compile(const KernelProgram& k) override;
  const mil::Tensor& evaluate(int handle, const mil::Tensor& input) override;
  int compiles() const override { return int(models_.size()); }
  CompileTiming compile_timing(int handle) const override { return timings_.at(size_t(handle)); }

 private:
  const mil::Type& input_type(int handle) const override;
  std::string program_name(int handle) const override { return names_.at(size_t(handle)); }
  std::vector<std::unique_ptr<sim::SimModel>> models_;
  std::vector<std::string> names_;
  std::vector<CompileTiming> timings_;  // the simulator's compile; it has no load step
  std::vector<mil::Tensor> outputs_;
};

}  // namespace anetrain::ane
