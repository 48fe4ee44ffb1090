// ref SwiGLU gate: h = silu(g)·u with silu(g) = g·σ(g); silu'(g) = σ(g)·(1 + g·(1−σ(g))).
#include <cmath>

#include "backends/ref/ref_backend.h"

namespace anetrain {

void RefBackend::swiglu_fwd(const float* g, const float* u, float* h, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    double sg = 1.0 / (1.0 + std::exp(-double(g[i])));
    h[i] = float(double(g[i]) * sg * u[i]);
  }
}

void RefBackend::swiglu_bwd(const float* dh, const float* g, const float* u, float* dg, float* du, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    double sg = 1.0 / (1.0 + std::exp(-double(g[i])));
    du[i] = float(double(dh[i]) * g[i] * sg);
    dg[i] = float(double(dh[i]) * u[i] * sg * (1.0 + g[i] * (1.0 - sg)));
  }
}

}  // namespace anetrain
