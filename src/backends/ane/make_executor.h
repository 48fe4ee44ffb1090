// Executors by name, the one place that maps a name to what runs the programs — for the ane
// backends, the C API's MIL programs and the CLI's probes:
//   ane-sim   the simulator (SimExecutor), on any OS
//   ane-fake  the hardware runtime over the fake framework (ANETRAIN_FAKE_ANE configures it)
//   ane       the hardware runtime over AppleNeuralEngine.framework (macOS builds only)
#pragma once
#include <memory>
#include <string>

#include "backends/ane/executor.h"
#include "backends/ane/runtime/runtime.h"
#include "core/error.h"

namespace anetrain::ane {

// The name is not one of the above.
class UnknownExecutor : public Error {
 public:
  explicit UnknownExecutor(const std::string& what) : Error(what) {}
};
// The name is known, but this build does not have it ("ane" off macOS).
class ExecutorNotBuilt : public Error {
 public:
  explicit ExecutorNotBuilt(const std::string& what) : Error(what) {}
};

std::unique_ptr<Executor> make_executor(const std::string& name);
// The hardware runtime itself ("ane-fake" or "ane"), for callers that read its timings.
std::unique_ptr<AneRuntime> make_runtime(const std::string& name);
// "ane" where this build runs the Neural Engine, else "ane-fake": the runtime a probe measures.
const char* hardware_runtime_name();
// Whether that runtime is the Neural Engine itself (a Mac build), not the fake framework.
bool runtime_is_hardware();

}  // namespace anetrain::ane
