// cpu classifier stage: logits = xf·Wᵀ and their softmax cross-entropy, streamed over vocabulary
// chunks so no N×V logits buffer exists (Qwen3's 151,936 columns would be 155 MB at T=256, twice
// over with the gradient). Forward folds each chunk into a running log-sum-exp per row; backward
// recomputes each chunk's logits (one extra classifier product) and turns them into dlogits in
// place before its two products. A vocabulary that fits one chunk keeps its logits from forward
// to backward instead, with no recomputation.
#include <algorithm>
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/fast_math.h"

namespace anetrain {

namespace {

// Columns per chunk. Logits up to 64 MB stay whole (stories110m at T=256: 33 MB), which saves
// the recomputation (measured 5% of that step); beyond, ~8 MB chunks of whole 64-column groups.
int chunk_width(int N, int V) {
  if (size_t(N) * size_t(V) <= (size_t(16) << 20)) return V;
  const int want = std::max(512, int((size_t(2) << 20) / size_t(std::max(N, 1))));
  return want >= V ? V : (want / 64) * 64;
}

}  // namespace

size_t CpuBackend::classifier_scratch_floats(int N, int V) const { return size_t(N) * size_t(chunk_width(N, V)); }

void CpuBackend::classifier_loss_fwd(const float* xf, const float* W, const int32_t* targets, float* losses,
                                     float* lse, float* scratch, int N, int D, int V) {
  const int C = chunk_width(N, V);
  running_max_.assign(size_t(N), -INFINITY);
  running_sum_.assign(size_t(N), 0.0);
  for (int v0 = 0; v0 < V; v0 += C) {
    const int w = std::min(C, V - v0);
    linear_fwd(xf, W + size_t(v0) * D, scratch, N, D, w);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      const float* z = scratch + size_t(n) * w;
      const float m = row_max(z, w);
      const double s = sum_exp_shifted(z, w, m);
      // Online log-sum-exp: rescale whichever running sum has the smaller max.
      if (targets[n] >= v0 && targets[n] < v0 + w) losses[n] = -z[targets[n] - v0];  // −z_target; lse added below
      const float M = std::max(running_max_[n], m);
      if (M == -INFINITY) continue;  // every logit so far −∞ (only with a non-finite input)
      running_sum_[n] = running_sum_[n] * std::exp(double(running_max_[n]) - M) + s * std::exp(double(m) - M);
      running_max_[n] = M;
    }
  }
  for (int n = 0; n < N; ++n) {
    lse[n] = running_max_[n] + float(std::log(running_sum_[n]));
    losses[n] += lse[n];
  }
}

void CpuBackend::classifier_loss_bwd(const float* xf, const float* W, const int32_t* targets, const float* lse,
                                     float scale, float* dxf, float* dW, float* scratch, int N, int D, int V) {
  const int C = chunk_width(N, V);
  for (int v0 = 0; v0 < V; v0 += C) {
    const int w = std::min(C, V - v0);
    if (C < V) linear_fwd(xf, W + size_t(v0) * D, scratch, N, D, w);  // one chunk: still there from forward
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      float* z = scratch + size_t(n) * w;
      const float l = lse[n];
#pragma omp simd
      for (int i = 0; i < w; ++i) z[i] = scale * exp_f32(z[i] - l);
      if (targets[n] >= v0 && targets[n] < v0 + w) z[targets[n] - v0] -= scale;
    }
    if (dW) linear_bwd_w(scratch, xf, dW + size_t(v0) * D, N, D, w);  // null: a frozen classifier
    linear_bwd_x(scratch, W + size_t(v0) * D, dxf, N, D, w, v0 > 0);
  }
}

}  // namespace anetrain
