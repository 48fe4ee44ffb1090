// Backend lookup by name.
#include "backends/ane_sim/ane_backend.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "core/error.h"

namespace anetrain {

std::vector<std::string> backend_names() { return {"cpu", "ref", "ane-sim"}; }

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return std::make_unique<CpuBackend>();
  if (name == "ref") return std::make_unique<RefBackend>();
  if (name == "ane-sim") return make_ane_sim_backend();
  if (name == "ane")
    fail("backend 'ane' runs on the Neural Engine of a Mac with Apple silicon and is not built into this binary; "
         "--backend ane-sim runs the same programs in the simulator on any OS");
  std::string list;
  for (const auto& n : backend_names()) list += (list.empty() ? "" : ", ") + n;
  fail("unknown backend '" + name + "' (available: " + list + ")");
}

}  // namespace anetrain
