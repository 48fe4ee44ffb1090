// cpu-bf16's flash attention: flash_attention.cpp's tiles, online softmax and backward, with every
// tile product on AMX, bf16 operands accumulating in fp32 (attention_tiles_bf16.h) — the products
// PyTorch's bf16 autocast runs in bf16 too. Q, K, V, dO, the probabilities and dS are rounded to
// bf16 as each product reads them; scores, the softmax's max/sum/lse, Di = rowsum(dO ⊙ O), dS's
// elementwise math and every output stay fp32. Each operand is packed once where it is shared:
// K and V per (sequence, kv head) before the forward's loop and per backward task, Q and dO per
// query head in the backward; P and dS per tile.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/attention_tiles_bf16.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/flash_rows.h"

namespace anetrain {

namespace {

using bf16_tiles::pairs;
using bf16_tiles::round16;
constexpr int kTile = kFlashTile;

// Word counts of the packed operands of one head of T rows × hd, with the products' padding.
struct PackedSizes {
  int hp, T16, hd16, Tp;  // hp: pairs of hd, rounded up to 16; Tp: pairs of T, rounded up to 16
  size_t cols() const { return size_t(hp) * T16; }         // pack_cols: the head transposed
  size_t pairs_down() const { return size_t(Tp) * hd16; }  // pack_row_pairs: pairs of rows
  size_t rows() const { return size_t(T16) * hp; }         // pack_rows: the rows as pairs
};
PackedSizes packed_sizes(const AttnShape& s) {
  return {round16(pairs(s.hd)), round16(s.T), round16(s.hd), round16(pairs(s.T))};
}
constexpr int kTilePairs = kTile / 2;  // row length of a packed tile of P or dS (and their transposes)

uint32_t* words(float* p) { return reinterpret_cast<uint32_t*>(p); }  // scratch floats reused as pairs

}  // namespace

bool CpuBackend::attention_bf16_tiles() const { return precision_ == Precision::bf16 && bf16_tiles::available(); }

void CpuBackend::attention_flash_fwd_bf16(const float* q, const float* k, const float* v, float* out, float* lse,
                                          const AttnShape& s) {
  const int T = s.T, hd = s.hd, group = s.Hq / s.Hkv, ldq = s.Hq * hd, ldkv = s.Hkv * hd;
  const int tiles = (T + kTile - 1) / kTile;
  const float scale = 1.0f / std::sqrt(float(hd));
  const PackedSizes z = packed_sizes(s);
  const size_t per_head = z.cols() + z.pairs_down();
  if (flash_packs_.size() < per_head * s.B * s.Hkv) flash_packs_.resize(per_head * s.B * s.Hkv);
  // Kᵀ (the scores' B) and V by pairs of rows (the output's B), once for all query heads.
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < s.B; ++b)
    for (int kh = 0; kh < s.Hkv; ++kh) {
      uint32_t* kt = flash_packs_.data() + per_head * (size_t(b) * s.Hkv + kh);
      const size_t at = size_t(b) * T * ldkv + size_t(kh) * hd;
      bf16_tiles::pack_cols(k + at, ldkv, T, hd, kt, z.T16);
      bf16_tiles::pack_row_pairs(v + at, ldkv, T, hd, kt + z.cols(), z.hd16);
    }
  const size_t per_thread = size_t(kTile) * kTile + 2 * kTile + size_t(kTile) * z.hp + size_t(kTile) * kTilePairs;
  float* scratch = flash_scratch(per_thread);
#pragma omp parallel for collapse(3) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.Hq; ++h)
      for (int it = 0; it < tiles; ++it) {
        const bf16_tiles::ThreadTiles amx;
        float* S = scratch + per_thread * size_t(omp_get_thread_num());
        float* m = S + kTile * kTile;  // running row max
        float* l = m + kTile;          // running row sum
        uint32_t* qn = words(l + kTile);
        uint32_t* pn = qn + size_t(kTile) * z.hp;
        const int i0 = it * kTile, ni = std::min(kTile, T - i0);
        const uint32_t* kt = flash_packs_.data() + per_head * (size_t(b) * s.Hkv + h / group);
        const uint32_t* vp = kt + z.cols();
        const float* qh = q + size_t(b) * T * ldq + size_t(h) * hd;
        float* oh = out + size_t(b) * T * ldq + size_t(h) * hd;
        bf16_tiles::pack_rows(qh + size_t(i0) * ldq, ldq, ni, hd, qn, z.hp);
        flash_start_rows(oh + size_t(i0) * ldq, ldq, hd, ni, m, l);
        for (int j0 = 0; j0 <= i0 + ni - 1; j0 += kTile) {
          const int nj = std::min(kTile, T - j0);
          bf16_tiles::gemm(ni, nj, z.hp, qn, z.hp, kt + j0, z.T16, S, kTile, scale, false);
          flash_mask_future(S, i0, ni, j0, nj);
          flash_online_softmax(S, ni, nj, m, l, oh + size_t(i0) * ldq, ldq, hd);
          bf16_tiles::pack_rows(S, kTile, ni, nj, pn, kTilePairs);
          bf16_tiles::gemm(ni, hd, pairs(nj), pn, kTilePairs, vp + size_t(j0 / 2) * z.hd16, z.hd16,
                           oh + size_t(i0) * ldq, ldq, 1.0f, true);
        }
        flash_finish_rows(oh + size_t(i0) * ldq, ldq, hd, ni, m, l, lse + (size_t(b) * s.Hq + h) * T + i0);
      }
}

void CpuBackend::attention_flash_bwd_bf16(const float* dout, const float* q, const float* k, const float* v,
                                          const float* out, const float* lse, float* dq, float* dk, float* dv,
                                          const AttnShape& s) {
  const int T = s.T, hd = s.hd, group = s.Hq / s.Hkv, ldq = s.Hq * hd, ldkv = s.Hkv * hd;
  const int tiles = (T + kTile - 1) / kTile;
  const float scale = 1.0f / std::sqrt(float(hd));
  const PackedSizes z = packed_sizes(s);
  const size_t tile = size_t(kTile) * kTile;
  // Kᵀ, Vᵀ, K by row pairs; Q and dO as rows and by row pairs; P and dP in fp32; Di; Pᵀ, dS, dSᵀ.
  const size_t per_thread = 2 * z.cols() + 3 * z.pairs_down() + 2 * z.rows() + 2 * tile + size_t(T) + 3 * tile / 2;
  float* scratch = flash_scratch(per_thread);
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < s.B; ++b)
    for (int kh = 0; kh < s.Hkv; ++kh) {
      const bf16_tiles::ThreadTiles amx;
      float* P = scratch + per_thread * size_t(omp_get_thread_num());
      float* dP = P + tile;
      float* Di = dP + tile;
      uint32_t* kt = words(Di + T);
      uint32_t* vt = kt + z.cols();
      uint32_t* kp = vt + z.cols();
      uint32_t* qp = kp + z.pairs_down();
      uint32_t* dop = qp + z.pairs_down();
      uint32_t* qn = dop + z.pairs_down();
      uint32_t* don = qn + z.rows();
      uint32_t* pt = don + z.rows();
      uint32_t* dsn = pt + tile / 2;
      uint32_t* dst = dsn + tile / 2;
      const auto [kg, vg, dkg, dvg] = kv_head_grads(s, b, kh, k, v, dk, dv);
      bf16_tiles::pack_cols(kg, ldkv, T, hd, kt, z.T16);
      bf16_tiles::pack_cols(vg, ldkv, T, hd, vt, z.T16);
      bf16_tiles::pack_row_pairs(kg, ldkv, T, hd, kp, z.hd16);
      for (int h = kh * group; h < (kh + 1) * group; ++h) {
        const size_t head = size_t(b) * T * ldq + size_t(h) * hd;
        const float* qh = q + head;
        const float* doh = dout + head;
        float* dqh = dq + head;
        const float* lse_h = lse + (size_t(b) * s.Hq + h) * T;
        bf16_tiles::pack_rows(qh, ldq, T, hd, qn, z.hp);
        bf16_tiles::pack_row_pairs(qh, ldq, T, hd, qp, z.hd16);
        bf16_tiles::pack_rows(doh, ldq, T, hd, don, z.hp);
        bf16_tiles::pack_row_pairs(doh, ldq, T, hd, dop, z.hd16);
        flash_row_dots(out + head, doh, dqh, ldq, hd, T, Di);
        for (int jt = 0; jt < tiles; ++jt) {
          const int j0 = jt * kTile, nj = std::min(kTile, T - j0);
          for (int i0 = j0; i0 < T; i0 += kTile) {  // query tiles at or after the key tile
            const int ni = std::min(kTile, T - i0);
            bf16_tiles::gemm(ni, nj, z.hp, qn + size_t(i0) * z.hp, z.hp, kt + j0, z.T16, P, kTile, scale, false);
            flash_mask_future(P, i0, ni, j0, nj);
            flash_probabilities(P, ni, nj, lse_h + i0);
            // dV_j += Pᵀ·dO_i ; dP = dO_i·V_jᵀ
            bf16_tiles::pack_row_pairs_transposed(P, kTile, ni, nj, pt, kTilePairs);
            bf16_tiles::gemm(nj, hd, pairs(ni), pt, kTilePairs, dop + size_t(i0 / 2) * z.hd16, z.hd16,
                             dvg + size_t(j0) * ldkv, ldkv, 1.0f, true);
            bf16_tiles::gemm(ni, nj, z.hp, don + size_t(i0) * z.hp, z.hp, vt + j0, z.T16, dP, kTile, 1.0f, false);
            flash_score_grads(P, dP, ni, nj, Di + i0, scale);
            // dQ_i += dS·K_j ; dK_j += dSᵀ·Q_i
            bf16_tiles::pack_rows(dP, kTile, ni, nj, dsn, kTilePairs);
            bf16_tiles::pack_row_pairs_transposed(dP, kTile, ni, nj, dst, kTilePairs);
            bf16_tiles::gemm(ni, hd, pairs(nj), dsn, kTilePairs, kp + size_t(j0 / 2) * z.hd16, z.hd16,
                             dqh + size_t(i0) * ldq, ldq, 1.0f, true);
            bf16_tiles::gemm(nj, hd, pairs(ni), dst, kTilePairs, qp + size_t(i0 / 2) * z.hd16, z.hd16,
                             dkg + size_t(j0) * ldkv, ldkv, 1.0f, true);
          }
        }
      }
    }
}

}  // namespace anetrain
