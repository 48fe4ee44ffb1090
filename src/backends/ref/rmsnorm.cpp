// ref RMSNorm. With r = 1/sqrt(mean(x²)+eps) and y_i = w_i·r·x_i:
//   ∂L/∂x_i = r·(w_i·dy_i − x_i·r²/D · Σ_j dy_j·w_j·x_j)   (the exact form; the original system's CPU
//   version multiplied the whole bracket by w_i, wrong whenever w ≠ 1)
//   ∂L/∂w_i = Σ_rows dy_i·r·x_i
#include <cmath>

#include "backends/ref/ref_backend.h"

namespace anetrain {

void RefBackend::rmsnorm_fwd(const float* x, const float* w, float* y, float* rstd, int N, int D, float eps) {
  for (int n = 0; n < N; ++n) {
    const float* xr = x + size_t(n) * D;
    double ss = 0;
    for (int i = 0; i < D; ++i) ss += double(xr[i]) * xr[i];
    double r = 1.0 / std::sqrt(ss / D + double(eps));
    rstd[n] = float(r);
    for (int i = 0; i < D; ++i) y[size_t(n) * D + i] = float(double(w[i]) * r * xr[i]);
  }
}

void RefBackend::rmsnorm_bwd(const float* dy, const float* x, const float* w, const float* rstd, float* dx_acc,
                             float* dw_acc, int N, int D) {
  for (int n = 0; n < N; ++n) {
    const float* xr = x + size_t(n) * D;
    const float* dyr = dy + size_t(n) * D;
    const double r = rstd[n];
    double dot = 0;
    for (int i = 0; i < D; ++i) dot += double(dyr[i]) * w[i] * xr[i];
    for (int i = 0; i < D; ++i) {
      dx_acc[size_t(n) * D + i] += float(r * (double(w[i]) * dyr[i] - double(xr[i]) * r * r / D * dot));
      if (dw_acc) dw_acc[i] += float(double(dyr[i]) * r * xr[i]);
    }
  }
}

}  // namespace anetrain
