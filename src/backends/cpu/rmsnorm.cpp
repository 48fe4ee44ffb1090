// cpu RMSNorm (math in backends/ref/rmsnorm.cpp), rows in parallel.
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/rmsnorm_row.h"

namespace anetrain {

void CpuBackend::rmsnorm_fwd(const float* x, const float* w, float* y, float* rstd, int N, int D, float eps) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    float* yr = y + size_t(n) * D;
    rstd[n] = rmsnorm_row(x + size_t(n) * D, w, D, eps, [yr](int i, float v) { yr[i] = v; });
  }
}

void CpuBackend::rmsnorm_bwd(const float* dy, const float* x, const float* w, const float* rstd, float* dx_acc,
                             float* dw_acc, int N, int D) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* xr = x + size_t(n) * D;
    const float* dyr = dy + size_t(n) * D;
    float* dxr = dx_acc + size_t(n) * D;
    const float r = rstd[n];
    float dot = 0;
    for (int i = 0; i < D; ++i) dot += dyr[i] * w[i] * xr[i];
    const float c = r * r * dot / float(D);
    for (int i = 0; i < D; ++i) dxr[i] += r * (w[i] * dyr[i] - xr[i] * c);
  }
  if (!dw_acc) return;  // a frozen gain
  // Columns in parallel: each thread owns its dw elements, so no reduction buffer is needed.
#pragma omp parallel for schedule(static)
  for (int i = 0; i < D; ++i) {
    float acc = 0;
    for (int n = 0; n < N; ++n) acc += dy[size_t(n) * D + i] * rstd[n] * x[size_t(n) * D + i];
    dw_acc[i] += acc;
  }
}

}  // namespace anetrain
