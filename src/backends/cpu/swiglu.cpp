// cpu SwiGLU gate (math in backends/ref/swiglu.cpp).
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/fast_math.h"

namespace anetrain {

void CpuBackend::swiglu_fwd(const float* g, const float* u, float* h, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) h[i] = g[i] / (1.0f + exp_f32(-g[i])) * u[i];
}

void CpuBackend::swiglu_bwd(const float* dh, const float* g, const float* u, float* dg, float* du, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const float sg = 1.0f / (1.0f + exp_f32(-g[i]));
    du[i] = dh[i] * g[i] * sg;
    dg[i] = dh[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
  }
}

}  // namespace anetrain
