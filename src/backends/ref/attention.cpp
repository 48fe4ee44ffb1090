// ref causal attention with grouped KV heads. For query head h, kv head = h / (Hq/Hkv):
// consecutive query heads share a kv head (Hugging Face repeat_kv; the original system tiled the
// other way in its forward only, so its forward and backward disagreed).
//   S = q·kᵀ/√hd (keys ≤ query), P = softmax(S), out = P·v
//   dP = dout·vᵀ, dS = P⊙(dP − Σ_j dP_j P_j), dq = dS·k/√hd, dk = dSᵀ·q/√hd, dv = Pᵀ·dout
#include <cmath>
#include <cstring>

#include "backends/ref/ref_backend.h"

namespace anetrain {

void RefBackend::attention_fwd(const float* q, const float* k, const float* v, float* out, float* probs,
                               const AttnShape& s) {
  const int T = s.T, hd = s.hd, group = s.Hq / s.Hkv;
  const double scale = 1.0 / std::sqrt(double(hd));
  auto qrow = [&](int b, int t, int h) { return q + ((size_t(b) * T + t) * s.Hq + h) * hd; };
  auto kvrow = [&](const float* base, int b, int t, int h) { return base + ((size_t(b) * T + t) * s.Hkv + h) * hd; };
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.Hq; ++h) {
      const int kh = h / group;
      for (int t = 0; t < T; ++t) {
        float* p = probs + ((size_t(b) * s.Hq + h) * T + t) * T;
        double mx = -INFINITY;
        for (int j = 0; j <= t; ++j) {
          double dot = 0;
          for (int i = 0; i < hd; ++i) dot += double(qrow(b, t, h)[i]) * kvrow(k, b, j, kh)[i];
          p[j] = float(dot * scale);
          mx = std::max(mx, double(p[j]));
        }
        double sum = 0;
        for (int j = 0; j <= t; ++j) sum += std::exp(double(p[j]) - mx);
        for (int j = 0; j <= t; ++j) p[j] = float(std::exp(double(p[j]) - mx) / sum);
        for (int j = t + 1; j < T; ++j) p[j] = 0.0f;
        float* o = out + ((size_t(b) * T + t) * s.Hq + h) * hd;
        for (int i = 0; i < hd; ++i) {
          double acc = 0;
          for (int j = 0; j <= t; ++j) acc += double(p[j]) * kvrow(v, b, j, kh)[i];
          o[i] = float(acc);
        }
      }
    }
}

void RefBackend::attention_bwd(const float* dout, const float* q, const float* k, const float* v, const float* probs,
                               float* dq, float* dk, float* dv, float* dprobs, const AttnShape& s) {
  const int T = s.T, hd = s.hd, group = s.Hq / s.Hkv;
  const double scale = 1.0 / std::sqrt(double(hd));
  const size_t qn = size_t(s.B) * T * s.Hq * hd, kvn = size_t(s.B) * T * s.Hkv * hd;
  std::memset(dq, 0, qn * sizeof(float));
  std::memset(dk, 0, kvn * sizeof(float));
  std::memset(dv, 0, kvn * sizeof(float));
  auto at = [&](const float* base, int H, int b, int t, int h) { return base + ((size_t(b) * T + t) * H + h) * hd; };
  auto atw = [&](float* base, int H, int b, int t, int h) { return base + ((size_t(b) * T + t) * H + h) * hd; };
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.Hq; ++h) {
      const int kh = h / group;
      for (int t = 0; t < T; ++t) {
        const float* p = probs + ((size_t(b) * s.Hq + h) * T + t) * T;
        float* dp = dprobs + ((size_t(b) * s.Hq + h) * T + t) * T;
        const float* go = at(dout, s.Hq, b, t, h);
        double pdp = 0;
        for (int j = 0; j <= t; ++j) {
          double acc = 0;
          for (int i = 0; i < hd; ++i) acc += double(go[i]) * at(v, s.Hkv, b, j, kh)[i];
          dp[j] = float(acc);
          pdp += acc * p[j];
        }
        for (int j = 0; j <= t; ++j) {
          double ds = double(p[j]) * (double(dp[j]) - pdp) * scale;
          for (int i = 0; i < hd; ++i) {
            atw(dq, s.Hq, b, t, h)[i] += float(ds * at(k, s.Hkv, b, j, kh)[i]);
            atw(dk, s.Hkv, b, j, kh)[i] += float(ds * at(q, s.Hq, b, t, h)[i]);
            atw(dv, s.Hkv, b, j, kh)[i] += float(double(p[j]) * go[i]);
          }
        }
      }
    }
}

}  // namespace anetrain

namespace anetrain {

void RefBackend::attention_cached_fwd(const float* q, const float* k_cache, const float* v_cache, float* out,
                                      float* scores, int pos0, int Tn, int Hq, int Hkv, int hd) {
  const int group = Hq / Hkv, ctx = pos0 + Tn;
  const double scale = 1.0 / std::sqrt(double(hd));
  for (int i = 0; i < Tn; ++i)
    for (int h = 0; h < Hq; ++h) {
      const int kh = h / group, last = pos0 + i;  // causal: keys 0…pos0+i
      const float* qr = q + (size_t(i) * Hq + h) * hd;
      float* p = scores + (size_t(h) * Tn + i) * ctx;
      double mx = -INFINITY;
      for (int j = 0; j <= last; ++j) {
        double dot = 0;
        for (int c = 0; c < hd; ++c) dot += double(qr[c]) * k_cache[(size_t(j) * Hkv + kh) * hd + c];
        p[j] = float(dot * scale);
        mx = std::max(mx, double(p[j]));
      }
      double sum = 0;
      for (int j = 0; j <= last; ++j) sum += std::exp(double(p[j]) - mx);
      float* o = out + (size_t(i) * Hq + h) * hd;
      for (int c = 0; c < hd; ++c) {
        double acc = 0;
        for (int j = 0; j <= last; ++j) acc += std::exp(double(p[j]) - mx) / sum * v_cache[(size_t(j) * Hkv + kh) * hd + c];
        o[c] = float(acc);
      }
    }
}

}  // namespace anetrain
