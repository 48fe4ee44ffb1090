// cpu softmax cross-entropy, rows in parallel; the log-sum-exp sum is kept in double because
// V reaches 151,936 (Qwen3) and a float sum of that many terms loses digits.
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/fast_math.h"

namespace anetrain {

namespace {
float log_sum_exp(const float* z, int V) {
  const float mx = row_max(z, V);
  return mx + float(std::log(sum_exp_shifted(z, V, mx)));
}
}  // namespace

void CpuBackend::cross_entropy_fwd(const float* logits, const int32_t* targets, float* losses, int N, int V) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* z = logits + size_t(n) * V;
    losses[n] = log_sum_exp(z, V) - z[targets[n]];
  }
}

void CpuBackend::cross_entropy_bwd(const float* logits, const int32_t* targets, float scale, float* dlogits, int N,
                                   int V) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* z = logits + size_t(n) * V;
    float* d = dlogits + size_t(n) * V;
    const float lse = log_sum_exp(z, V);
#pragma omp simd
    for (int i = 0; i < V; ++i) d[i] = scale * exp_f32(z[i] - lse);
    d[targets[n]] -= scale;
  }
}

}  // namespace anetrain
