// The register tile shared by the aarch64 Q8_0 prefill kernels (packed_gemm_dotprod.cpp with SDOT,
// packed_gemm_i8mm.cpp with SMMLA): 4 weight rows × 4 tokens, each group's 16 integer dots summed
// exactly in int32 by the file's instruction, then scaled and added in fp32 in group order.
// Included only by those two files, each compiled with its own -march; everything here has
// internal linkage, so neither file can pick up the other's instructions at link time.
//
// The fp32 part is the row kernels' (kernels_arm.h q8_sum_in_group_order): s starts at 0 and
// takes float(d)·sw·sx per group, in group order, one vector lane per row. The build is ISO C++
// (no FMA contraction), so a prompt's chunk gets the same bits as the same tokens decoded one by
// one — and as llama2.c's runq.c.
#pragma once
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace anetrain::arm {
namespace {

constexpr int kTileRows = 4, kTileTokens = 4;

// Rows [r0, r1) of W (row-major, `cols` bytes a row, scales ws with cols/group per row) times
// tokens 0..N-1 of x (quantized rows of `cols` bytes, scales xs), into y[t·y_stride + r − r0].
// GroupSums(w, x, group, d) sets d[t] lane i to the exact dot of w[i] and x[t] over `group` bytes.
// A tile past the last row or token repeats the last one and drops its results, so no padded
// copies are made.
template <class GroupSums>
inline void q8_tile_band(const int8_t* W, const float* ws, int r0, int r1, const int8_t* x, const float* xs, int N,
                         int cols, int group, float* y, size_t y_stride, GroupSums group_sums) {
  const int G = cols / group;
  const size_t width = size_t(cols);
  for (int t0 = 0; t0 < N; t0 += kTileTokens) {
    const int8_t* xt[kTileTokens];
    const float* st[kTileTokens];
    for (int j = 0; j < kTileTokens; ++j) {
      const int t = std::min(t0 + j, N - 1);
      xt[j] = x + size_t(t) * width;
      st[j] = xs + size_t(t) * size_t(G);
    }
    for (int rb = r0; rb < r1; rb += kTileRows) {
      const int8_t* wr[kTileRows];
      const float* sr[kTileRows];
      for (int i = 0; i < kTileRows; ++i) {
        const int r = std::min(rb + i, r1 - 1);
        wr[i] = W + size_t(r) * width;
        sr[i] = ws + size_t(r) * size_t(G);
      }
      float32x4_t acc[kTileTokens];
      for (auto& a : acc) a = vdupq_n_f32(0.0f);
      for (int g = 0; g < G; ++g) {
        const size_t at = size_t(g) * size_t(group);
        const int8_t* wg[kTileRows] = {wr[0] + at, wr[1] + at, wr[2] + at, wr[3] + at};
        const int8_t* xg[kTileTokens] = {xt[0] + at, xt[1] + at, xt[2] + at, xt[3] + at};
        int32x4_t d[kTileTokens];
        group_sums(wg, xg, group, d);
        const float sw_lanes[kTileRows] = {sr[0][g], sr[1][g], sr[2][g], sr[3][g]};
        const float32x4_t sw = vld1q_f32(sw_lanes);
        for (int j = 0; j < kTileTokens; ++j)
          acc[j] = vaddq_f32(acc[j], vmulq_n_f32(vmulq_f32(vcvtq_f32_s32(d[j]), sw), st[j][g]));
      }
      const int rows = std::min(kTileRows, r1 - rb), tokens = std::min(kTileTokens, N - t0);
      for (int j = 0; j < tokens; ++j) {
        float lanes[kTileRows];
        vst1q_f32(lanes, acc[j]);
        float* out = y + size_t(t0 + j) * y_stride + size_t(rb - r0);
        for (int i = 0; i < rows; ++i) out[i] = lanes[i];
      }
    }
  }
}

}  // namespace
}  // namespace anetrain::arm
