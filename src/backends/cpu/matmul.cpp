// cpu linear layer: the three products of y = x·Wᵀ as row-major sgemm calls.
#include <cblas.h>

#include "backends/cpu/cpu_backend.h"

namespace anetrain {

void CpuBackend::linear_fwd(const float* x, const float* W, float* y, int N, int in, int out) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, x, in, W, in, 0.0f, y, out);
}

void CpuBackend::linear_bwd_x(const float* dy, const float* W, float* dx, int N, int in, int out, bool accumulate) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, dy, out, W, in, accumulate ? 1.0f : 0.0f,
              dx, in);
}

void CpuBackend::linear_bwd_w(const float* dy, const float* x, float* dW, int N, int in, int out) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, in);
}

}  // namespace anetrain
