// The Q8_0 prefill tiles for CPUs with FEAT_DotProd (packed_gemm_arm_tile.h): per 16 bytes of a
// group, four weight loads and four token loads feed sixteen SDOTs, one accumulator per (row,
// token), each four partial lanes; a group's four lanes are added by two pairwise adds per token.
// Against the row kernel, which loads its row once per token, each weight load serves four
// tokens. Compiled with -march=armv8.2-a+dotprod (CMakeLists.txt) and called only when
// core/cpu_features reports the feature.
#if !defined(__aarch64__) || !defined(__ARM_FEATURE_DOTPROD)
#error "packed_gemm_dotprod.cpp is built for aarch64 with +dotprod only"
#endif
#include "backends/cpu/kernels_arm.h"
#include "backends/cpu/packed_gemm_arm_tile.h"

namespace anetrain::arm {

namespace {

// d[t] lane i = the exact dot of w[i] and x[t] over `group` bytes (a multiple of 16).
inline void group_sums_sdot(const int8_t* const* w, const int8_t* const* x, int group, int32x4_t* d) {
  int32x4_t a[kTileTokens][kTileRows];
  for (auto& row : a)
    for (auto& v : row) v = vdupq_n_s32(0);
  for (int k = 0; k < group; k += 16) {
    int8x16_t wv[kTileRows], xv[kTileTokens];
    for (int i = 0; i < kTileRows; ++i) wv[i] = vld1q_s8(w[i] + k);
    for (int j = 0; j < kTileTokens; ++j) xv[j] = vld1q_s8(x[j] + k);
    for (int j = 0; j < kTileTokens; ++j)
      for (int i = 0; i < kTileRows; ++i) a[j][i] = vdotq_s32(a[j][i], wv[i], xv[j]);
  }
  for (int j = 0; j < kTileTokens; ++j)
    d[j] = vpaddq_s32(vpaddq_s32(a[j][0], a[j][1]), vpaddq_s32(a[j][2], a[j][3]));
}

}  // namespace

void q8_tiles_dotprod(const int8_t* W, const float* ws, int r0, int r1, const int8_t* x, const float* xs, int N,
                      int cols, int group, float* y, size_t y_stride) {
  q8_tile_band(W, ws, r0, r1, x, xs, N, cols, group, y, y_stride, group_sums_sdot);
}

}  // namespace anetrain::arm
