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

// bf16: each chunk's dlogits go straight to bf16 as they are made, the one copy both products
// read. The fp32 path's products would each round the fp32 dlogits to bf16 in a pass of their own
// (two with a trained classifier): the same roundings of the same values, so the same bits, for
// one write of N·w bf16 instead of N·w floats plus their conversions (8.2M values a stories110m
// step).
void CpuBackend::dlogits_bf16_products(const float* xf, const float* W, const int32_t* targets, const float* lse,
                                       float scale, float* dxf, float* dW, const float* logits, int N, int D, int w,
                                       int v0) {
  auto& buf = scratch_[0];
  if (buf.size() < size_t(N) * w) buf.resize(size_t(N) * w);
  uint16_t* dz = buf.data();
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* z = logits + size_t(n) * w;
    uint16_t* dzr = dz + size_t(n) * w;
    const float l = lse[n];
#pragma omp simd
    for (int i = 0; i < w; ++i) dzr[i] = f32_to_bf16_branchless(scale * exp_f32(z[i] - l));
    const int t = targets[n] - v0;
    if (t >= 0 && t < w) {
      const float p = scale * exp_f32(z[t] - l);
      dzr[t] = f32_to_bf16_branchless(p - scale);
    }
  }
  if (dW) gemm_.bf16(dz, true, bf16_activation(xf, size_t(N) * D, 1), false, dW, w, D, N, true);  // dW += dzᵀ·xf
  gemm_.bf16(dz, false, bf16_weight(W, size_t(w) * D), false, dxf, N, D, w, v0 > 0);           // dxf (+)= dz·W
}

void CpuBackend::classifier_loss_bwd(const float* xf, const float* W, const int32_t* targets, const float* lse,
                                     float scale, float* dxf, float* dW, float* scratch, int N, int D, int V) {
  const int C = chunk_width(N, V);
  for (int v0 = 0; v0 < V; v0 += C) {
    const int w = std::min(C, V - v0);
    if (C < V) linear_fwd(xf, W + size_t(v0) * D, scratch, N, D, w);  // one chunk: still there from forward
    if (precision_ == Precision::bf16) {
      dlogits_bf16_products(xf, W + size_t(v0) * D, targets, lse, scale, dxf, dW ? dW + size_t(v0) * D : nullptr,
                            scratch, N, D, w, v0);
      continue;
    }
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
