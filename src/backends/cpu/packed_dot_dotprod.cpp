// The Q8_0 row kernel for CPUs with FEAT_DotProd (Apple M1 and later, Cortex-A76/Neoverse N1 and
// later). Compiled with -march=armv8.2-a+dotprod (src/backends/cpu/CMakeLists.txt) and called only
// when core/cpu_features reports the feature, so the rest of the build stays at Armv8.0.
//
// SDOT adds sixteen int8 × int8 products into four int32 lanes in one instruction, where plain
// NEON needs SMULL, SMULL2 and two SADALP; both operands are signed, so unlike x86's vpdpbusd no
// offset activations and no 128·Σw correction are needed, and −128 weights are exact.
#if !defined(__aarch64__) || !defined(__ARM_FEATURE_DOTPROD)
#error "packed_dot_dotprod.cpp is built for aarch64 with +dotprod only"
#endif
#include <arm_neon.h>

#include "backends/cpu/kernels_arm.h"

namespace anetrain::arm {

namespace {

// One group's exact integer dot in four lanes; two chains, so that consecutive SDOTs of a long
// group do not wait on each other.
inline int32x4_t group_dot(const int8_t* w, const int8_t* x, int group) {
  int32x4_t a = vdupq_n_s32(0), b = a;
  int i = 0;
  for (; i + 32 <= group; i += 32) {
    a = vdotq_s32(a, vld1q_s8(w + i), vld1q_s8(x + i));
    b = vdotq_s32(b, vld1q_s8(w + i + 16), vld1q_s8(x + i + 16));
  }
  if (i < group) a = vdotq_s32(a, vld1q_s8(w + i), vld1q_s8(x + i));
  return vaddq_s32(a, b);
}

// A row, any group that is a multiple of 16: each group's exact sum, scaled and added in group
// order (kernels_arm.h says why).
float dot_q8(const int8_t* w, const float* ws, const int8_t* x, const float* xs, int n, int group) {
  return q8_sum_in_group_order(n / group, ws, xs, [&](int g) {
    return vaddvq_s32(group_dot(w + size_t(g) * size_t(group), x + size_t(g) * size_t(group), group));
  });
}

}  // namespace

void q8_rows_dotprod(const int8_t* W, const float* ws, int r0, int r1, const int8_t* x, const float* xs, int n,
                     int group, float* out) {
  const size_t G = size_t(n / group);
  for (int r = r0; r < r1; ++r) out[r - r0] = dot_q8(W + size_t(r) * size_t(n), ws + size_t(r) * G, x, xs, n, group);
}

}  // namespace anetrain::arm
