// The row-wise steps of flash attention that do not depend on how the tile products are computed,
// shared by the fp32 path (flash_attention.cpp, OpenBLAS) and the bf16 path (flash_attention_bf16.cpp,
// AMX tiles). Rows are a tile's: S, P and dP hold kFlashTile floats a row; o points at a head's
// first row of the tile in a [T, ldq] activation.
// Internal linkage on purpose: the two files are built with different vector widths, and each must
// keep the arithmetic its own flags give (an inline function with external linkage would be one
// copy for both).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstring>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/fast_math.h"

namespace anetrain {
namespace {

// Causal mask: −∞ where key j > query i, on the tile pair straddling the diagonal.
void flash_mask_future(float* S, int i0, int ni, int j0, int nj) {
  if (j0 + nj - 1 > i0)
    for (int r = 0; r < ni; ++r)
      for (int c = (i0 + r + 1 - j0 > 0 ? i0 + r + 1 - j0 : 0); c < nj; ++c) S[r * kFlashTile + c] = -INFINITY;
}

// A query tile's rows before its first key tile: no max yet, nothing summed, output zero.
void flash_start_rows(float* o, size_t ldq, int hd, int ni, float* m, float* l) {
  for (int r = 0; r < ni; ++r) {
    m[r] = -INFINITY;
    l[r] = 0;
    std::memset(o + size_t(r) * ldq, 0, sizeof(float) * hd);
  }
}

// The online softmax over one key tile's scores S: each row's running max and sum move on, what
// earlier tiles added to the output is rescaled, and S becomes exp(s − max) for the P·V product.
void flash_online_softmax(float* S, int ni, int nj, float* m, float* l, float* o, size_t ldq, int hd) {
  for (int r = 0; r < ni; ++r) {
    float* p = S + r * kFlashTile;
    float mx = m[r];
    for (int c = 0; c < nj; ++c) mx = p[c] > mx ? p[c] : mx;
    const float correction = exp_f32(m[r] - mx);  // rescales what earlier tiles summed
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < nj; ++c) {
      p[c] = exp_f32(p[c] - mx);
      sum += p[c];
    }
    l[r] = l[r] * correction + sum;
    m[r] = mx;
    float* out = o + size_t(r) * ldq;
    for (int e = 0; e < hd; ++e) out[e] *= correction;
  }
}

// After the last key tile: each row divided by its sum, and lse = max + log(sum) kept for backward.
void flash_finish_rows(float* o, size_t ldq, int hd, int ni, const float* m, const float* l, float* lse) {
  for (int r = 0; r < ni; ++r) {
    const float inv = 1.0f / l[r];
    float* out = o + size_t(r) * ldq;
    for (int e = 0; e < hd; ++e) out[e] *= inv;
    lse[r] = m[r] + std::log(l[r]);
  }
}

// Backward, per query head: Di = rowsum(dO ⊙ O) for every row, and dQ zeroed for the tiles to add into.
void flash_row_dots(const float* o, const float* dout, float* dq, size_t ldq, int hd, int T, float* Di) {
  for (int t = 0; t < T; ++t) {
    const float* ot = o + size_t(t) * ldq;
    const float* g = dout + size_t(t) * ldq;
    float d = 0;
    for (int e = 0; e < hd; ++e) d += ot[e] * g[e];
    Di[t] = d;
    std::memset(dq + size_t(t) * ldq, 0, sizeof(float) * hd);
  }
}

// Backward: a tile's probabilities again, exp(s − lse), from its scores.
void flash_probabilities(float* P, int ni, int nj, const float* lse) {
  for (int r = 0; r < ni; ++r) {
    float* p = P + r * kFlashTile;
    const float l = lse[r];
#pragma omp simd
    for (int c = 0; c < nj; ++c) p[c] = exp_f32(p[c] - l);
  }
}

// Backward: dS = P ⊙ (dP − Di)·scale, in place of dP.
void flash_score_grads(const float* P, float* dP, int ni, int nj, const float* Di, float scale) {
  for (int r = 0; r < ni; ++r) {
    const float* p = P + r * kFlashTile;
    float* d = dP + r * kFlashTile;
    const float di = Di[r];
#pragma omp simd
    for (int c = 0; c < nj; ++c) d[c] = p[c] * (d[c] - di) * scale;
  }
}

}  // namespace
}  // namespace anetrain
