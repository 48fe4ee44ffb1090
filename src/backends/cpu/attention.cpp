// cpu causal attention (math in backends/ref/attention.cpp). Work is split over
// (batch, kv head): the query heads of one group all write the same dk/dv rows, so keeping a
// group on one thread makes the backward race-free without atomics.
#include <cmath>
#include <cstring>

#include "backends/cpu/cpu_backend.h"

namespace anetrain {

namespace {
inline float dot(const float* a, const float* b, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
inline void axpy(float a, const float* x, float* y, int n) {
#pragma omp simd
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}
}  // namespace

void CpuBackend::attention_fwd(const float* q, const float* k, const float* v, float* out, float* probs,
                               const AttnShape& s) {
  const int T = s.T, hd = s.hd, group = s.Hq / s.Hkv;
  const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.Hq; ++h) {
      const int kh = h / group;
      for (int t = 0; t < T; ++t) {
        const float* qr = q + ((size_t(b) * T + t) * s.Hq + h) * hd;
        float* p = probs + ((size_t(b) * s.Hq + h) * T + t) * T;
        float mx = -INFINITY;
        for (int j = 0; j <= t; ++j) {
          p[j] = dot(qr, k + ((size_t(b) * T + j) * s.Hkv + kh) * hd, hd) * scale;
          mx = std::max(mx, p[j]);
        }
        float sum = 0;
        for (int j = 0; j <= t; ++j) {
          p[j] = std::exp(p[j] - mx);
          sum += p[j];
        }
        const float inv = 1.0f / sum;
        for (int j = 0; j <= t; ++j) p[j] *= inv;
        std::memset(p + t + 1, 0, sizeof(float) * size_t(T - t - 1));
        float* o = out + ((size_t(b) * T + t) * s.Hq + h) * hd;
        std::memset(o, 0, sizeof(float) * hd);
        for (int j = 0; j <= t; ++j) axpy(p[j], v + ((size_t(b) * T + j) * s.Hkv + kh) * hd, o, hd);
      }
    }
}

void CpuBackend::attention_bwd(const float* dout, const float* q, const float* k, const float* v, const float* probs,
                               float* dq, float* dk, float* dv, float* dprobs, const AttnShape& s) {
  const int T = s.T, hd = s.hd, group = s.Hq / s.Hkv;
  const float scale = 1.0f / std::sqrt(float(hd));
  auto row = [&](auto* base, int H, int b, int t, int h) { return base + ((size_t(b) * T + t) * H + h) * hd; };
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int kh = 0; kh < s.Hkv; ++kh) {
      for (int t = 0; t < T; ++t) {
        std::memset(row(dk, s.Hkv, b, t, kh), 0, sizeof(float) * hd);
        std::memset(row(dv, s.Hkv, b, t, kh), 0, sizeof(float) * hd);
      }
      for (int h = kh * group; h < (kh + 1) * group; ++h)
        for (int t = 0; t < T; ++t) {
          const float* p = probs + ((size_t(b) * s.Hq + h) * T + t) * T;
          float* dp = dprobs + ((size_t(b) * s.Hq + h) * T + t) * T;
          const float* go = row(dout, s.Hq, b, t, h);
          float pdp = 0;
          for (int j = 0; j <= t; ++j) {
            dp[j] = dot(go, row(v, s.Hkv, b, j, kh), hd);
            pdp += dp[j] * p[j];
          }
          float* dqr = row(dq, s.Hq, b, t, h);
          std::memset(dqr, 0, sizeof(float) * hd);
          const float* qr = row(q, s.Hq, b, t, h);
          for (int j = 0; j <= t; ++j) {
            const float ds = p[j] * (dp[j] - pdp) * scale;
            axpy(ds, row(k, s.Hkv, b, j, kh), dqr, hd);
            axpy(ds, qr, row(dk, s.Hkv, b, j, kh), hd);
            axpy(p[j], go, row(dv, s.Hkv, b, j, kh), hd);
          }
        }
    }
}

}  // namespace anetrain
