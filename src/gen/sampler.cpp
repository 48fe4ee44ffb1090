#include "gen/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace anetrain {

int32_t sample_token(const float* logits, int V, const SamplingParams& p, Rng& rng, std::vector<float>& probs) {
  if (p.temperature <= 0.0f) return int32_t(std::max_element(logits, logits + V) - logits);
  const float mx = *std::max_element(logits, logits + V);
  probs.resize(size_t(V));
  double sum = 0;
  for (int i = 0; i < V; ++i) sum += probs[i] = std::exp((logits[i] - mx) / p.temperature);
  // Candidates sorted by probability; keep the top-k, then the smallest prefix reaching top_p.
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  size_t keep = p.top_k > 0 ? std::min<size_t>(size_t(p.top_k), size_t(V)) : size_t(V);
  std::partial_sort(order.begin(), order.begin() + long(keep), order.end(),
                    [&](int32_t a, int32_t b) { return probs[a] != probs[b] ? probs[a] > probs[b] : a < b; });
  double mass = 0;
  size_t n = 0;
  while (n < keep) {
    mass += probs[order[n]] / sum;
    ++n;
    if (p.top_p < 1.0f && mass >= p.top_p) break;
  }
  double kept = 0;
  for (size_t i = 0; i < n; ++i) kept += probs[order[i]];
  double r = rng.uniform() * kept;
  for (size_t i = 0; i < n; ++i) {
    r -= probs[order[i]];
    if (r <= 0) return order[i];
  }
  return order[n - 1];
}

}  // namespace anetrain
