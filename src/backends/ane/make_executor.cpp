#include "backends/ane/make_executor.h"

#include "backends/ane/fake/fake_api.h"
#include "backends/ane/sim_executor.h"

namespace anetrain::ane {

std::unique_ptr<AneRuntime> make_runtime(const std::string& name) {
  if (name == "ane-fake") return std::make_unique<AneRuntime>(make_fake_api());
  if (name == "ane") {
#if defined(ANETRAIN_HAVE_ANE)
    return std::make_unique<AneRuntime>(make_apple_api());
#else
    throw ExecutorNotBuilt(
        "backend 'ane' runs on the Neural Engine of a Mac with Apple silicon and is not built into this binary; "
        "backend 'ane-sim' runs the same programs in the simulator on any OS");
#endif
  }
  throw UnknownExecutor("unknown MIL backend '" + name + "' (available: ane-sim, ane-fake, ane)");
}

std::unique_ptr<Executor> make_executor(const std::string& name) {
  if (name == "ane-sim") return std::make_unique<SimExecutor>();
  return make_runtime(name);
}

const char* hardware_runtime_name() {
#if defined(ANETRAIN_HAVE_ANE)
  return "ane";
#else
  return "ane-fake";
#endif
}

bool runtime_is_hardware() {
#if defined(ANETRAIN_HAVE_ANE)
  return true;
#else
  return false;
#endif
}

}  // namespace anetrain::ane
