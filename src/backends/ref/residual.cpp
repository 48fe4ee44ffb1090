// ref residual connection y = x + α·f.
#include "backends/ref/ref_backend.h"

namespace anetrain {

void RefBackend::residual_fwd(const float* x, const float* f, float alpha, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = float(double(x[i]) + double(alpha) * f[i]);
}

void RefBackend::residual_bwd(const float* dy, float alpha, float* df, size_t n) {
  for (size_t i = 0; i < n; ++i) df[i] = float(double(alpha) * dy[i]);
}

}  // namespace anetrain
