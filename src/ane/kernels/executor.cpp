#include "ane/kernels/executor.h"

namespace anetrain::ane {

// The simulator reads the program's weight files from memory; the hardware path writes them to a
// temporary model folder first, as the compiler requires.
int SimExecutor::compile(const KernelProgram& k) {
  models_.push_back(sim::SimRuntime::process().compile(k.program, k.blobs));
  outputs_.emplace_back();
  return int(models_.size()) - 1;
}

const sim::Tensor& SimExecutor::evaluate(int handle, const sim::Tensor& input) {
  std::vector<sim::Tensor> out = models_.at(size_t(handle))->evaluate({input});
  outputs_[size_t(handle)] = std::move(out.at(0));
  return outputs_[size_t(handle)];
}

}  // namespace anetrain::ane
