// cpu softmax cross-entropy, rows in parallel; the log-sum-exp sum is kept in double because
// V reaches 151,936 (Qwen3) and a float sum of that many terms loses digits.
#include <cmath>

#include "backends/cpu/cpu_backend.h"

namespace anetrain {

namespace {
float log_sum_exp(const float* z, int V) {
  float mx = -INFINITY;
  for (int i = 0; i < V; ++i) mx = std::max(mx, z[i]);
  double s = 0;
  for (int i = 0; i < V; ++i) s += std::exp(z[i] - mx);
  return mx + float(std::log(s));
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
    for (int i = 0; i < V; ++i) d[i] = scale * std::exp(z[i] - lse);
    d[targets[n]] -= scale;
  }
}

}  // namespace anetrain
