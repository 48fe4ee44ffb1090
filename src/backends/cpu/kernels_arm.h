// The cpu backend's aarch64 kernels for decoding and prefill, one level per source file, each
// compiled with that level's -march (src/backends/cpu/CMakeLists.txt) and called only after
// core/cpu_features says the CPU has it: packed_dot_neon.cpp and attend_head_neon.cpp run on any
// aarch64 CPU (Armv8.0 NEON), packed_dot_dotprod.cpp and packed_gemm_dotprod.cpp need
// FEAT_DotProd, packed_gemm_i8mm.cpp FEAT_I8MM. Declared with plain C++ types, so the
// dispatching files need no ARM header. Built only for aarch64.
//
// Row kernels take a range of rows so that the loop over rows stays inside the kernel's file (a
// call per row through another translation unit would be a fifth of a short Q8_0 row's time).
#pragma once
#include <cstddef>
#include <cstdint>

namespace anetrain::arm {

// out[r − r0] = W[r, 0..n) · x for r in [r0, r1); W row-major with rows of n values.
// fp32 weights: FMLA over eight accumulators.
void f32_rows_neon(const float* W, int r0, int r1, const float* x, int n, float* out);
// bf16 weights: each value widened to fp32 by a shift and multiplied with the fp32 activation
// by FMLA (exact products; the only rounding is the weights' own — see packed_dot_neon.cpp for
// why not BFDOT).
void bf16_rows_neon(const uint16_t* W, int r0, int r1, const float* x, int n, float* out);

// Q8_0 weights (scales ws, n / group per row) against a quantized activation row (x, xs), for
// group % 16 == 0. The integer dot of each group is exact; the groups' terms are summed in fp32.
// Plain NEON: SMULL + SADALP (int8 × int8 → int16 pairs → int32 lanes).
void q8_rows_neon(const int8_t* W, const float* ws, int r0, int r1, const int8_t* x, const float* xs, int n,
                  int group, float* out);
// FEAT_DotProd: SDOT, sixteen int8 products into four int32 lanes per instruction.
void q8_rows_dotprod(const int8_t* W, const float* ws, int r0, int r1, const int8_t* x, const float* xs, int n,
                     int group, float* out);

// A prompt's chunk of Q8_0 products (group % 16 == 0): rows [r0, r1) of W times tokens 0..N-1 of
// the quantized activations x (rows of n values, scales xs), into y[t·y_stride + r − r0], in
// register tiles of 4 rows × 4 tokens (packed_gemm_arm_tile.h), with the row kernels' bits.
// FEAT_DotProd: SDOT; FEAT_I8MM: SMMLA, 2×8 by 8×2 blocks of int8.
void q8_tiles_dotprod(const int8_t* W, const float* ws, int r0, int r1, const int8_t* x, const float* xs, int N,
                      int n, int group, float* y, size_t y_stride);
void q8_tiles_i8mm(const int8_t* W, const float* ws, int r0, int r1, const int8_t* x, const float* xs, int N, int n,
                   int group, float* y, size_t y_stride);

// Σ_g float(exact_group_sum(g)) · ws[g] · xs[g] over `groups`, added in group order in fp32: the
// portable loop's and llama2.c's runq.c arithmetic, so both Q8_0 kernels give their bits. Scaling
// the four partial lanes of a group separately, or adding the groups in several chains, changed
// the last bits, and that flipped a near-tie in a greedy story on which runq.c and the x86 kernel
// agree. The add chain costs one FADD latency per group of 32+ weights, more than any one core's
// share of memory bandwidth needs.
template <class ExactGroupSum>
inline float q8_sum_in_group_order(int groups, const float* ws, const float* xs, ExactGroupSum exact_group_sum) {
  float s = 0.0f;
  for (int g = 0; g < groups; ++g) s += float(exact_group_sum(g)) * ws[g] * xs[g];
  return s;
}

// quantize_q8_0 (contract/packed.h) for group % 16 == 0, bit for bit: the same scale, the same
// round-half-away, the same clamps and NaN rules.
void quantize_q8_0_neon(const float* x, size_t n, int group, int8_t* q, float* scales);

// One query head over n cached positions, hd ∈ {16, 32, 64, 128}: p = softmax(K·q · scale),
// out = Vᵀ·p (K and V rows ldkv apart; p receives the probabilities).
void attend_head_neon(const float* q, const float* k, const float* v, int ldkv, int n, int hd, float scale, float* p,
                      float* out);

}  // namespace anetrain::arm
