// Backend lookup by name.
#include "backends/ane/ane_backend.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "core/error.h"

namespace anetrain {

std::vector<std::string> backend_names() { return {"cpu", "ref", "ane-sim"}; }

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return std::make_unique<CpuBackend>();
  // Not listed: the cpu backend in bf16 mixed precision, which users pick with --precision.
  if (name == "cpu-bf16") return std::make_unique<CpuBackend>(Precision::bf16);
  if (name == "ref") return std::make_unique<RefBackend>();
  if (name == "ane-sim") return make_ane_sim_backend();
#if defined(ANETRAIN_HAVE_ANE)
  if (name == "ane") return make_ane_backend();
#else
  if (name == "ane")
    fail("backend 'ane' runs on the Neural Engine of a Mac with Apple silicon and is not built into this binary; "
         "--backend ane-sim runs the same programs in the simulator on any OS");
#endif
  // Not listed: the ane backend's runtime (compile/load/IOSurfaces/requests) over a fake of the
  // private framework that executes through ane-sim; how CI exercises the macOS code path.
  if (name == "ane-fake") return make_ane_fake_backend();
  std::string list;
  for (const auto& n : backend_names()) list += (list.empty() ? "" : ", ") + n;
  fail("unknown backend '" + name + "' (available: " + list + ")");
}

std::unique_ptr<Backend> make_backend(const std::string& name, Precision precision) {
  if (precision == Precision::fp32) return make_backend(name);
  if (name != "cpu")
    fail("--precision bf16 is the cpu backend's mixed precision; backend '" + name +
         "' computes in its own precision (use --precision fp32 with it)");
  return make_backend("cpu-bf16");
}

}  // namespace anetrain
