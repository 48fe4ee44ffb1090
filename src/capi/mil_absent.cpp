// The C API's MIL functions in a build without the ane backends (-DANETRAIN_BACKEND_ANE_SIM=OFF
// off macOS): the symbols stay, so a program linked against them still loads, and each call says
// what is missing.
#include "anetrain.h"
#include "capi/guard.h"

using anetrain::capi::guarded;
using anetrain::capi::refuse;

namespace {
[[noreturn]] void not_built() {
  refuse(ANETRAIN_ERR_UNSUPPORTED,
         "MIL programs run on the ane backends, which are not built into this library "
         "(configure with -DANETRAIN_BACKEND_ANE_SIM=ON)");
}
}  // namespace

extern "C" {

anetrain_status anetrain_mil_compile(const char*, const char*, const char*, anetrain_mil** out) {
  return guarded("anetrain_mil_compile", [&] {
    if (out) *out = nullptr;
    not_built();
  });
}

void anetrain_mil_free(anetrain_mil*) {}

anetrain_status anetrain_mil_shape(const anetrain_mil*, int, int64_t*, size_t*, size_t*) {
  return guarded("anetrain_mil_shape", [] { not_built(); });
}

anetrain_status anetrain_mil_run(anetrain_mil*, const float*, size_t, float*, size_t*) {
  return guarded("anetrain_mil_run", [] { not_built(); });
}

}  // extern "C"
