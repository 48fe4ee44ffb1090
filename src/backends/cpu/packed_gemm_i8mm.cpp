// The Q8_0 prefill tiles for CPUs with FEAT_I8MM (packed_gemm_arm_tile.h): SMMLA multiplies a
// 2×8 block of int8 (two weight rows' next 8 bytes) by an 8×2 block (two tokens' next 8 bytes)
// into a 2×2 block of int32 sums. Per 16 bytes of a group, the four rows' and four tokens' loads
// are paired into 8-byte halves (one zip each) and eight SMMLAs cover the 4×4 tile, where SDOT
// takes sixteen and a reduction; each accumulator already holds whole sums, which one
// unzip per token puts into row lanes. Compiled with -march=armv8.2-a+dotprod+i8mm
// (CMakeLists.txt) and called only when core/cpu_features reports I8MM.
#if !defined(__aarch64__) || !defined(__ARM_FEATURE_MATMUL_INT8)
#error "packed_gemm_i8mm.cpp is built for aarch64 with +i8mm only"
#endif
#include "backends/cpu/kernels_arm.h"
#include "backends/cpu/packed_gemm_arm_tile.h"

namespace anetrain::arm {

namespace {

// Bytes 0–7 of a then of b (lo), or bytes 8–15 of each (hi): one SMMLA operand of two rows.
inline int8x16_t pair_lo(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
inline int8x16_t pair_hi(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

// d[t] lane i = the exact dot of w[i] and x[t] over `group` bytes (a multiple of 16). a[p][q]
// holds rows 2p, 2p+1 × tokens 2q, 2q+1 as [r0·t0, r0·t1, r1·t0, r1·t1].
inline void group_sums_smmla(const int8_t* const* w, const int8_t* const* x, int group, int32x4_t* d) {
  int32x4_t a[2][2];
  for (auto& row : a)
    for (auto& v : row) v = vdupq_n_s32(0);
  for (int k = 0; k < group; k += 16) {
    int8x16_t wl[2], wh[2], xl[2], xh[2];
    for (int p = 0; p < 2; ++p) {
      const int8x16_t w0 = vld1q_s8(w[2 * p] + k), w1 = vld1q_s8(w[2 * p + 1] + k);
      wl[p] = pair_lo(w0, w1), wh[p] = pair_hi(w0, w1);
      const int8x16_t x0 = vld1q_s8(x[2 * p] + k), x1 = vld1q_s8(x[2 * p + 1] + k);
      xl[p] = pair_lo(x0, x1), xh[p] = pair_hi(x0, x1);
    }
    for (int p = 0; p < 2; ++p)
      for (int q = 0; q < 2; ++q) a[p][q] = vmmlaq_s32(vmmlaq_s32(a[p][q], wl[p], xl[q]), wh[p], xh[q]);
  }
  for (int q = 0; q < 2; ++q) {
    d[2 * q] = vuzp1q_s32(a[0][q], a[1][q]);      // token 2q: lanes r0, r1, r2, r3
    d[2 * q + 1] = vuzp2q_s32(a[0][q], a[1][q]);  // token 2q+1
  }
}

}  // namespace

void q8_tiles_i8mm(const int8_t* W, const float* ws, int r0, int r1, const int8_t* x, const float* xs, int N,
                   int cols, int group, float* y, size_t y_stride) {
  q8_tile_band(W, ws, r0, r1, x, xs, N, cols, group, y, y_stride, group_sums_smmla);
}

}  // namespace anetrain::arm
