// The backend table: one line per backend, guarded by the CMake option that builds it
// (ANETRAIN_BACKEND_<NAME> defines ANETRAIN_HAVE_<NAME> for the code that uses it).
#include "contract/registry.h"

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/gemm.h"
#include "backends/ref/ref_backend.h"
#include "core/error.h"
#if defined(ANETRAIN_HAVE_ANE_SIM) || defined(ANETRAIN_HAVE_ANE)
#include "backends/ane/ane_backend.h"
#endif

namespace anetrain {
namespace {

template <class B>
std::unique_ptr<Backend> plain(const BackendOptions&) {
  return std::make_unique<B>();
}
template <class B>
std::unique_ptr<Backend> in_precision(const BackendOptions& o) {
  return std::make_unique<B>(o.precision);
}
template <class B, Precision P>
std::unique_ptr<Backend> always_in(const BackendOptions&) {
  return std::make_unique<B>(P);
}
#if defined(ANETRAIN_HAVE_ANE_SIM) || defined(ANETRAIN_HAVE_ANE)
// An ane backend, named after its executor, on the cpu backend for what its programs do not run.
template <const char* Executor>
std::unique_ptr<Backend> ane_on_cpu(const BackendOptions&) {
  return make_ane_backend(Executor, make_backend("cpu"));
}
// Each used only by the table rows of the executors this build has.
[[maybe_unused]] constexpr char kAneSim[] = "ane-sim", kAneFake[] = "ane-fake", kAne[] = "ane";
#endif

[[maybe_unused]] constexpr std::string_view kNeedsAneSim =
    "is not built into this binary (configure with -DANETRAIN_BACKEND_ANE_SIM=ON)";

// A function's static, not a global: tests list the backends while static objects are made.
const std::vector<BackendEntry>& table() {
  static const std::vector<BackendEntry> backends = {
      {.name = "cpu", .listed = true, .make = in_precision<CpuBackend>, .offers_bf16 = true,
       .preferred_precision = default_precision},
      {.name = "cpu-bf16", .make = always_in<CpuBackend, Precision::bf16>, .users_ask = "--backend cpu --precision bf16"},
      {.name = "ref", .listed = true, .make = plain<RefBackend>},
#if defined(ANETRAIN_HAVE_ANE_SIM)
      {.name = "ane-sim", .listed = true, .make = ane_on_cpu<kAneSim>},
      // The ane backend's runtime (compile/load/IOSurfaces/requests) over a fake of the private
      // framework that executes through ane-sim: how CI exercises the macOS code path.
      {.name = "ane-fake", .make = ane_on_cpu<kAneFake>},
#else
      {.name = "ane-sim", .absent = kNeedsAneSim},
      {.name = "ane-fake", .absent = kNeedsAneSim},
#endif
#if defined(ANETRAIN_HAVE_ANE)
      {.name = "ane", .make = ane_on_cpu<kAne>},
#else
      {.name = "ane", .absent = "runs on the Neural Engine of a Mac with Apple silicon and is not built into this "
                                "binary; --backend ane-sim runs the same programs in the simulator on any OS"},
#endif
  };
  return backends;
}

}  // namespace

const std::vector<BackendEntry>& backend_table() { return table(); }

const BackendEntry* find_backend(std::string_view name) {
  for (const BackendEntry& e : table())
    if (e.name == name) return &e;
  return nullptr;
}

std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (const BackendEntry& e : table())
    if (e.listed && e.make) names.emplace_back(e.name);
  return names;
}

Precision preferred_precision(const std::string& name) {
  const BackendEntry* e = find_backend(name);
  return e && e->preferred_precision ? e->preferred_precision() : Precision::fp32;
}

std::string matrix_isa() { return gemm_isa(); }

std::unique_ptr<Backend> make_backend(const std::string& name, const BackendOptions& options) {
  const BackendEntry* e = find_backend(name);
  if (!e) {
    std::string list;
    for (const auto& n : backend_names()) list += (list.empty() ? "" : ", ") + n;
    fail("unknown backend '" + name + "' (available: " + list + ")");
  }
  if (options.precision != Precision::fp32 && !e->offers_bf16)
    fail("--precision bf16 is the cpu backend's mixed precision; backend '" + name +
         "' computes in its own precision (use --precision fp32 with it)");
  if (!e->make) fail("backend '" + name + "' " + std::string(e->absent));
  return e->make(options);
}

}  // namespace anetrain
