// cpu causal attention in the flash form: the same math as attention.cpp without the T×T matrix.
// Queries and keys go in tiles of kTile rows; a query tile meets only the key tiles at or before
// it (the masked half is never computed), with an online softmax that carries each row's running
// max and sum. Forward saves lse = max + log(sum) per row; backward recomputes each tile's
// probabilities as exp(s − lse) and needs Di = rowsum(dO ⊙ O), so nothing of size T×T is kept:
//   dV_j += Pᵀ·dO_i,  dP = dO_i·V_jᵀ,  dS = P ⊙ (dP − Di)/√hd,  dQ_i += dS·K_j,  dK_j += dSᵀ·Q_i.
// Tile products are sgemm calls on strided head rows (OpenBLAS runs them single-threaded inside
// our parallel loops). Work: forward over (batch, head, query tile); backward over (batch, kv
// head), so the query heads that add into one dK/dV stay on one thread. cpu-bf16 on a CPU with
// AMX-BF16 runs the same algorithm on bf16 tile products (flash_attention_bf16.cpp).
#include "core/blas.h"
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/flash_rows.h"

namespace anetrain {

namespace {

constexpr int kTile = kFlashTile;
// From one tile up the flash form is used. Measured (bf16 step, 2-core Zen 4): stories110m T=256
// 660–700 ms vs 715–950 with probabilities; stories15m T=1024 470 vs 525 ms and 467 vs 643 MB peak
// RSS; at T=128 (the default job) the two are within noise. Below one tile they are the same work.
constexpr int kFlashMinT = kTile;

// Scores of one tile pair, scaled, with the causal mask applied where the tiles overlap.
void tile_scores(const float* q, int ldq, const float* k, int ldk, int hd, int i0, int ni, int j0, int nj,
                 float scale, float* S) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nj, hd, scale, q + size_t(i0) * ldq, ldq,
              k + size_t(j0) * ldk, ldk, 0.0f, S, kTile);
  flash_mask_future(S, i0, ni, j0, nj);
}

}  // namespace

bool CpuBackend::attention_flash(const AttnShape& s) const { return s.T >= kFlashMinT; }

float* CpuBackend::flash_scratch(size_t floats_per_thread) {
  const size_t need = floats_per_thread * size_t(omp_get_max_threads());
  if (flash_scratch_.size() < need) flash_scratch_.resize(need);  // first call only
  return flash_scratch_.data();
}

void CpuBackend::attention_flash_fwd(const float* q, const float* k, const float* v, float* out, float* lse,
                                     const AttnShape& s) {
  if (attention_bf16_tiles()) return attention_flash_fwd_bf16(q, k, v, out, lse, s);
  const int T = s.T, hd = s.hd, group = s.Hq / s.Hkv, ldq = s.Hq * hd, ldkv = s.Hkv * hd;
  const int tiles = (T + kTile - 1) / kTile;
  const float scale = 1.0f / std::sqrt(float(hd));
  const size_t per_thread = size_t(kTile) * kTile + 2 * kTile;
  float* scratch = flash_scratch(per_thread);
#pragma omp parallel for collapse(3) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.Hq; ++h)
      for (int it = 0; it < tiles; ++it) {
        float* S = scratch + per_thread * size_t(omp_get_thread_num());
        float* m = S + kTile * kTile;  // running row max
        float* l = m + kTile;          // running row sum
        const int i0 = it * kTile, ni = std::min(kTile, T - i0);
        const float* qh = q + size_t(b) * T * ldq + size_t(h) * hd;
        const float* kg = k + size_t(b) * T * ldkv + size_t(h / group) * hd;
        const float* vg = v + size_t(b) * T * ldkv + size_t(h / group) * hd;
        float* oh = out + size_t(b) * T * ldq + size_t(h) * hd;
        flash_start_rows(oh + size_t(i0) * ldq, ldq, hd, ni, m, l);
        for (int j0 = 0; j0 <= i0 + ni - 1; j0 += kTile) {
          const int nj = std::min(kTile, T - j0);
          tile_scores(qh, ldq, kg, ldkv, hd, i0, ni, j0, nj, scale, S);
          flash_online_softmax(S, ni, nj, m, l, oh + size_t(i0) * ldq, ldq, hd);
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, hd, nj, 1.0f, S, kTile, vg + size_t(j0) * ldkv,
                      ldkv, 1.0f, oh + size_t(i0) * ldq, ldq);
        }
        flash_finish_rows(oh + size_t(i0) * ldq, ldq, hd, ni, m, l, lse + (size_t(b) * s.Hq + h) * T + i0);
      }
}

void CpuBackend::attention_flash_bwd(const float* dout, const float* q, const float* k, const float* v,
                                     const float* out, const float* lse, float* dq, float* dk, float* dv,
                                     const AttnShape& s) {
  if (attention_bf16_tiles()) return attention_flash_bwd_bf16(dout, q, k, v, out, lse, dq, dk, dv, s);
  const int T = s.T, hd = s.hd, group = s.Hq / s.Hkv, ldq = s.Hq * hd, ldkv = s.Hkv * hd;
  const int tiles = (T + kTile - 1) / kTile;
  const float scale = 1.0f / std::sqrt(float(hd));
  const size_t per_thread = 2 * size_t(kTile) * kTile + size_t(T);
  float* scratch = flash_scratch(per_thread);
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int kh = 0; kh < s.Hkv; ++kh) {
      float* P = scratch + per_thread * size_t(omp_get_thread_num());
      float* dP = P + kTile * kTile;
      float* Di = dP + kTile * kTile;
      const auto [kg, vg, dkg, dvg] = kv_head_grads(s, b, kh, k, v, dk, dv);
      for (int h = kh * group; h < (kh + 1) * group; ++h) {
        const size_t head = size_t(b) * T * ldq + size_t(h) * hd;
        const float* qh = q + head;
        const float* doh = dout + head;
        float* dqh = dq + head;
        const float* lse_h = lse + (size_t(b) * s.Hq + h) * T;
        flash_row_dots(out + head, doh, dqh, ldq, hd, T, Di);
        for (int jt = 0; jt < tiles; ++jt) {
          const int j0 = jt * kTile, nj = std::min(kTile, T - j0);
          for (int i0 = j0; i0 < T; i0 += kTile) {  // query tiles at or after the key tile
            const int ni = std::min(kTile, T - i0);
            tile_scores(qh, ldq, kg, ldkv, hd, i0, ni, j0, nj, scale, P);
            flash_probabilities(P, ni, nj, lse_h + i0);
            // dV_j += Pᵀ·dO_i ; dP = dO_i·V_jᵀ
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nj, hd, ni, 1.0f, P, kTile, doh + size_t(i0) * ldq,
                        ldq, 1.0f, dvg + size_t(j0) * ldkv, ldkv);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nj, hd, 1.0f, doh + size_t(i0) * ldq, ldq,
                        vg + size_t(j0) * ldkv, ldkv, 0.0f, dP, kTile);
            flash_score_grads(P, dP, ni, nj, Di + i0, scale);
            // dQ_i += dS·K_j ; dK_j += dSᵀ·Q_i
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, hd, nj, 1.0f, dP, kTile, kg + size_t(j0) * ldkv,
                        ldkv, 1.0f, dqh + size_t(i0) * ldq, ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nj, hd, ni, 1.0f, dP, kTile, qh + size_t(i0) * ldq,
                        ldq, 1.0f, dkg + size_t(j0) * ldkv, ldkv);
          }
        }
      }
    }
}

}  // namespace anetrain
