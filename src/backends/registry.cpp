// Backend lookup by name. `ane` (macOS only) and `ane-sim` register here once they exist.
#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "core/error.h"

namespace anetrain {

std::vector<std::string> backend_names() { return {"cpu", "ref"}; }

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return std::make_unique<CpuBackend>();
  if (name == "ref") return std::make_unique<RefBackend>();
  std::string list;
  for (const auto& n : backend_names()) list += (list.empty() ? "" : ", ") + n;
  fail("unknown backend '" + name + "' (available: " + list + ")");
}

}  // namespace anetrain
