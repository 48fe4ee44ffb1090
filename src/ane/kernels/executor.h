// Who runs a compiled kernel program: ane-sim on any OS, the private ANE runtime on a Mac. The
// kernels, their packing and the stages are the same for both; only this differs.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "ane/kernels/programs.h"
#include "ane/sim/executor.h"

namespace anetrain::ane {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string name() const = 0;
  // Compiles and loads; the handle is valid for the executor's lifetime.
  virtual int compile(const KernelProgram& k) = 0;
  // One evaluation: the single input (fp16 values, the program's input shape) → the single output.
  virtual const sim::Tensor& evaluate(int handle, const sim::Tensor& input) = 0;
  virtual int compiles() const = 0;
};

// Compiles in the process's SimRuntime (which counts toward the compile budget); weights are
// read once, at compile time.
class SimExecutor final : public Executor {
 public:
  std::string name() const override { return "ane-sim"; }
  int compile(const KernelProgram& k) override;
  const sim::Tensor& evaluate(int handle, const sim::Tensor& input) override;
  int compiles() const override { return int(models_.size()); }

 private:
  std::vector<std::unique_ptr<sim::SimModel>> models_;
  std::vector<sim::Tensor> outputs_;
};

}  // namespace anetrain::ane
