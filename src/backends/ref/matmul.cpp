// ref linear layer: the three products of y = x·Wᵀ, one dot product at a time.
#include "backends/ref/ref_backend.h"

namespace anetrain {

void RefBackend::linear_fwd(const float* x, const float* W, float* y, int N, int in, int out) {
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < out; ++o) {
      double acc = 0;
      for (int i = 0; i < in; ++i) acc += double(x[size_t(n) * in + i]) * W[size_t(o) * in + i];
      y[size_t(n) * out + o] = float(acc);
    }
}

void RefBackend::linear_bwd_x(const float* dy, const float* W, float* dx, int N, int in, int out, bool accumulate) {
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < in; ++i) {
      double acc = accumulate ? dx[size_t(n) * in + i] : 0.0;
      for (int o = 0; o < out; ++o) acc += double(dy[size_t(n) * out + o]) * W[size_t(o) * in + i];
      dx[size_t(n) * in + i] = float(acc);
    }
}

void RefBackend::linear_bwd_w(const float* dy, const float* x, float* dW, int N, int in, int out) {
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) {
      double acc = 0;
      for (int n = 0; n < N; ++n) acc += double(dy[size_t(n) * out + o]) * x[size_t(n) * in + i];
      dW[size_t(o) * in + i] += float(acc);
    }
}

}  // namespace anetrain
