// cpu residual connection y = x + α·f.
#include "backends/cpu/cpu_backend.h"

namespace anetrain {

void CpuBackend::residual_fwd(const float* x, const float* f, float alpha, float* y, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) y[i] = x[i] + alpha * f[i];
}

void CpuBackend::residual_bwd(const float* dy, float alpha, float* df, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) df[i] = alpha * dy[i];
}

}  // namespace anetrain
