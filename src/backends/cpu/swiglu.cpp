// cpu SwiGLU gate (math in backends/ref/swiglu.cpp).
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/fast_math.h"

namespace anetrain {

void CpuBackend::swiglu_fwd(const float* g, const float* u, float* h, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) h[i] = swiglu(g[i], u[i]);
}

void CpuBackend::swiglu_bwd(const float* dh, const float* g, const float* u, float* dg, float* du, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) swiglu_grads(dh[i], g[i], u[i], dg[i], du[i]);
}

}  // namespace anetrain
