// cpu causal attention (math in backends/ref/attention.cpp), as per-head matrix products:
//   S = Q_h·K_gᵀ/√hd → causal softmax → O_h = P·V_g, and in backward
//   dP = dO_h·V_gᵀ, dS = P⊙(dP − rowsum(dP⊙P))/√hd, dQ_h = dS·K_g, dK_g += dSᵀ·Q_h, dV_g += Pᵀ·dO_h
// Heads are strided rows of the (B,T,H,hd) tensors, which sgemm takes directly through its
// leading dimension. The masked upper triangle is computed and discarded: sgemm's efficiency
// more than pays for the wasted half at training lengths. Work is split over (batch, kv head)
// so a group's query heads, which all add into the same dK/dV rows, stay on one thread.
#include "core/blas.h"

#include <cmath>
#include <cstring>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/fast_math.h"

namespace anetrain {

namespace {

// Row t keeps columns 0..t: softmax over them, zeros after.
void causal_softmax_rows(float* P, int T) {
  for (int t = 0; t < T; ++t) {
    float* p = P + size_t(t) * T;
    softmax_row(p, t + 1);
    std::memset(p + t + 1, 0, sizeof(float) * size_t(T - t - 1));
  }
}

}  // namespace

void CpuBackend::attention_fwd(const float* q, const float* k, const float* v, float* out, float* probs,
                               const AttnShape& s) {
  const int T = s.T, hd = s.hd, group = s.Hq / s.Hkv;
  const int ldq = s.Hq * hd, ldkv = s.Hkv * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.Hq; ++h) {
      const int kh = h / group;
      const float* qh = q + size_t(b) * T * ldq + size_t(h) * hd;
      const float* kg = k + size_t(b) * T * ldkv + size_t(kh) * hd;
      const float* vg = v + size_t(b) * T * ldkv + size_t(kh) * hd;
      float* P = probs + (size_t(b) * s.Hq + h) * T * T;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, qh, ldq, kg, ldkv, 0.0f, P, T);
      causal_softmax_rows(P, T);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, vg, ldkv, 0.0f,
                  out + size_t(b) * T * ldq + size_t(h) * hd, ldq);
    }
}

void CpuBackend::attention_bwd(const float* dout, const float* q, const float* k, const float* v, const float* probs,
                               float* dq, float* dk, float* dv, float* dprobs, const AttnShape& s) {
  const int T = s.T, hd = s.hd, group = s.Hq / s.Hkv;
  const int ldq = s.Hq * hd, ldkv = s.Hkv * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int kh = 0; kh < s.Hkv; ++kh) {
      const auto [kg, vg, dkg, dvg] = kv_head_grads(s, b, kh, k, v, dk, dv);
      for (int h = kh * group; h < (kh + 1) * group; ++h) {
        const size_t head = size_t(b) * T * ldq + size_t(h) * hd;
        const float* P = probs + (size_t(b) * s.Hq + h) * T * T;
        float* dS = dprobs + (size_t(b) * s.Hq + h) * T * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dout + head, ldq, vg, ldkv, 0.0f, dS, T);
        for (int t = 0; t < T; ++t) {
          const float* p = P + size_t(t) * T;
          float* d = dS + size_t(t) * T;
          float pdp = 0;
          for (int j = 0; j <= t; ++j) pdp += p[j] * d[j];
          for (int j = 0; j <= t; ++j) d[j] = p[j] * (d[j] - pdp) * scale;
          std::memset(d + t + 1, 0, sizeof(float) * size_t(T - t - 1));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, dS, T, kg, ldkv, 0.0f, dq + head, ldq);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, dS, T, q + head, ldq, 1.0f, dkg, ldkv);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, dout + head, ldq, 1.0f, dvg, ldkv);
      }
    }
}

}  // namespace anetrain

namespace anetrain {

void CpuBackend::attention_cached_fwd(const float* q, const float* k_cache, const float* v_cache, float* out,
                                      float* scores, int pos0, int Tn, int Hq, int Hkv, int hd) {
  const int group = Hq / Hkv, ctx = pos0 + Tn, ldkv = Hkv * hd, ldq = Hq * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  if (Tn > 1) {
    // A prompt's chunk: per head one product of all its queries with the cached keys and one with
    // the values (two sgemm instead of 2·Tn sgemv, which re-read the cache for every query).
    // Query i sees positions 0..pos0+i; the later ones of the chunk are computed and zeroed.
#pragma omp parallel for schedule(static)
    for (int h = 0; h < Hq; ++h) {
      const int kh = h / group;
      float* S = scores + size_t(h) * Tn * ctx;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tn, ctx, hd, scale, q + size_t(h) * hd, ldq,
                  k_cache + size_t(kh) * hd, ldkv, 0.0f, S, ctx);
      for (int i = 0; i < Tn; ++i) {
        float* p = S + size_t(i) * ctx;
        const int n = pos0 + i + 1;
        softmax_row(p, n);
        std::memset(p + n, 0, sizeof(float) * size_t(ctx - n));
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tn, hd, ctx, 1.0f, S, ctx, v_cache + size_t(kh) * hd,
                  ldkv, 0.0f, out + size_t(h) * hd, ldq);
    }
    return;
  }
  // Decoding one token: Hq independent rows.
#pragma omp parallel for collapse(2) schedule(static)
  for (int h = 0; h < Hq; ++h)
    for (int i = 0; i < Tn; ++i) {
      const int kh = h / group, n = pos0 + i + 1;
      const float* qr = q + (size_t(i) * Hq + h) * hd;
      float* p = scores + (size_t(h) * Tn + i) * ctx;
      // scores = K_g[0:n]·q: a matrix-vector product over the strided cache rows.
      cblas_sgemv(CblasRowMajor, CblasNoTrans, n, hd, scale, k_cache + size_t(kh) * hd, ldkv, qr, 1, 0.0f, p, 1);
      softmax_row(p, n);
      cblas_sgemv(CblasRowMajor, CblasTrans, n, hd, 1.0f, v_cache + size_t(kh) * hd, ldkv, p, 1, 0.0f,
                  out + (size_t(i) * Hq + h) * hd, 1);
    }
}

}  // namespace anetrain
