// ref softmax cross-entropy over the vocabulary, with the max subtracted for stability.
#include <cmath>

#include "backends/ref/ref_backend.h"

namespace anetrain {

namespace {
double log_sum_exp(const float* z, int V) {
  double mx = -INFINITY;
  for (int i = 0; i < V; ++i) mx = std::max(mx, double(z[i]));
  double s = 0;
  for (int i = 0; i < V; ++i) s += std::exp(double(z[i]) - mx);
  return mx + std::log(s);
}
}  // namespace

void RefBackend::cross_entropy_fwd(const float* logits, const int32_t* targets, float* losses, int N, int V) {
  for (int n = 0; n < N; ++n) {
    const float* z = logits + size_t(n) * V;
    losses[n] = float(log_sum_exp(z, V) - z[targets[n]]);
  }
}

void RefBackend::cross_entropy_bwd(const float* logits, const int32_t* targets, float scale, float* dlogits, int N,
                                   int V) {
  for (int n = 0; n < N; ++n) {
    const float* z = logits + size_t(n) * V;
    const double lse = log_sum_exp(z, V);
    for (int i = 0; i < V; ++i) {
      double p = std::exp(double(z[i]) - lse);
      dlogits[size_t(n) * V + i] = float(scale * (p - (i == targets[n] ? 1.0 : 0.0)));
    }
  }
}

}  // namespace anetrain
