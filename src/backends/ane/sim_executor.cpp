#include "backends/ane/sim_executor.h"

#include <chrono>

namespace anetrain::ane {

// The simulator reads the program's weight files from memory; the hardware path writes them to a
// temporary model folder first, as the compiler requires.
int SimExecutor::compile(const KernelProgram& k) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    models_.push_back(sim::Compiler::process().compile(k.program, k.blobs));
  } catch (const mil::MilError& e) {
    // The simulated hardware's refusal (a limit the Neural Engine's compiler enforces).
    throw ProgramRejected(std::string("ANE compile of program '") + k.name + "' failed: " + e.what());
  }
  timings_.push_back({std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(), 0});
  outputs_.emplace_back();
  names_.push_back(k.name);
  return int(models_.size()) - 1;
}

// No conversion happens here: the caller hands over values already rounded to fp16, as the
// simulator requires, so nothing is counted.
const mil::Tensor& SimExecutor::evaluate(int handle, const mil::Tensor& input) {
  std::vector<mil::Tensor> out = models_.at(size_t(handle))->evaluate({input});
  outputs_[size_t(handle)] = std::move(out.at(0));
  return outputs_[size_t(handle)];
}

const mil::Type& SimExecutor::input_type(int handle) const {
  return models_.at(size_t(handle))->program().inputs.at(0).second;
}

}  // namespace anetrain::ane
