// Vectorisable float math for the cpu backend's elementwise loops. glibc's expf is a scalar
// call that stops the compiler vectorising a loop around it (its SIMD variants are only declared
// under -ffast-math, which would also break the NaN checks training relies on); it was the
// largest single cost outside the matrix products in a small model's step.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace anetrain {

// e^x to within 2 ulp for normal results: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its degree-7
// Taylor polynomial (truncation < 1e-8 relative), 2^n built in the exponent field. Below −87.3
// the result is 0 (exp(−∞) = 0 for masked logits), above 88.7 it is +∞, NaN stays NaN.
inline float exp_f32(float x) {
  // Plain compares, not fmin/fmax: those are library calls that NaN semantics keep out of line.
  float xc = x < -87.3f ? -87.3f : x;
  xc = xc > 88.7f ? 88.7f : xc;
  xc = xc == xc ? xc : 0.0f;  // NaN: computed on 0 (the result is replaced below), no NaN→int
  // Round to the nearest integer by the 1.5·2²³ trick (vectorises, unlike nearbyint).
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (xc - n * 0.693145751953125f) - n * 1.428606820309417e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // n ∈ [−126, 128]: 2^n as a float, split in two factors so n = 128 (e^88.7 ≈ 3.3e38) does not
  // overflow the exponent field before the multiply.
  const int32_t ni = int32_t(n);
  const int32_t half = ni >> 1;
  const uint32_t b1 = uint32_t(half + 127) << 23, b2 = uint32_t(ni - half + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, 4);
  std::memcpy(&s2, &b2, 4);
  float y = p * s1 * s2;
  y = x < -87.3f ? 0.0f : y;
  y = x > 88.7f ? INFINITY : y;
  return x != x ? x : y;
}

// SwiGLU's gate, silu(g)·u, and its gradients: one expression for the op (swiglu.cpp), the bf16
// FFN stage and the fused decode layer, so that they agree bit for bit.
inline float swiglu(float g, float u) { return g / (1.0f + exp_f32(-g)) * u; }
inline void swiglu_grads(float dh, float g, float u, float& dg, float& du) {
  const float sg = 1.0f / (1.0f + exp_f32(-g));
  du = dh * g * sg;
  dg = dh * u * sg * (1.0f + g * (1.0f - sg));
}

// max of z[0..n) (NaN entries are skipped; a row of NaN gives −∞).
inline float row_max(const float* z, int n) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int i = 0; i < n; ++i) m = z[i] > m ? z[i] : m;
  return m;
}

// Σ exp(z[i] − mx) in double, over eight lanes: vectorised, and the same order on every run (so
// exact resume holds). Large vocabularies need the double: 151,936 float terms lose digits.
inline double sum_exp_shifted(const float* z, int n, float mx) {
  constexpr int kLanes = 8;
  double lane[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] += double(exp_f32(z[i + j] - mx));
  double s = 0;
  for (; i < n; ++i) s += double(exp_f32(z[i] - mx));
  for (int j = 0; j < kLanes; ++j) s += lane[j];
  return s;
}

// In place: p[0..n) ← softmax(p[0..n)). The row's max is subtracted first, so exp never overflows.
inline void softmax_row(float* p, int n) {
  const float mx = row_max(p, n);
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < n; ++j) {
    p[j] = exp_f32(p[j] - mx);
    sum += p[j];
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int j = 0; j < n; ++j) p[j] *= inv;
}

}  // namespace anetrain
