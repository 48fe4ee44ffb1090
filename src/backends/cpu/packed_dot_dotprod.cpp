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

// Groups of exactly 32 (GGUF's Q8_0 and runq.c's default), the common case: unrolled by two.
float dot_q8_g32(const int8_t* w, const float* ws, const int8_t* x, const float* xs, int n) {
  const int G = n / 32;
  float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
  int g = 0;
  for (; g + 2 <= G; g += 2) {
    const int8_t* wg = w + 32 * g;
    const int8_t* xg = x + 32 * g;
    const int32x4_t d0 = vdotq_s32(vdotq_s32(vdupq_n_s32(0), vld1q_s8(wg), vld1q_s8(xg)), vld1q_s8(wg + 16),
                                   vld1q_s8(xg + 16));
    const int32x4_t d1 = vdotq_s32(vdotq_s32(vdupq_n_s32(0), vld1q_s8(wg + 32), vld1q_s8(xg + 32)),
                                   vld1q_s8(wg + 48), vld1q_s8(xg + 48));
    a0 = vfmaq_n_f32(a0, vcvtq_f32_s32(d0), ws[g] * xs[g]);
    a1 = vfmaq_n_f32(a1, vcvtq_f32_s32(d1), ws[g + 1] * xs[g + 1]);
  }
  if (g < G) a0 = vfmaq_n_f32(a0, vcvtq_f32_s32(group_dot(w + 32 * g, x + 32 * g, 32)), ws[g] * xs[g]);
  return vaddvq_f32(vaddq_f32(a0, a1));
}

// Any other multiple of 16: the same per group, two groups per step.
float dot_q8(const int8_t* w, const float* ws, const int8_t* x, const float* xs, int n, int group) {
  const int G = n / group;
  float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
  int g = 0;
  for (; g + 2 <= G; g += 2) {
    const int32x4_t d0 = group_dot(w + g * group, x + g * group, group);
    const int32x4_t d1 = group_dot(w + (g + 1) * group, x + (g + 1) * group, group);
    a0 = vfmaq_n_f32(a0, vcvtq_f32_s32(d0), ws[g] * xs[g]);
    a1 = vfmaq_n_f32(a1, vcvtq_f32_s32(d1), ws[g + 1] * xs[g + 1]);
  }
  if (g < G) a0 = vfmaq_n_f32(a0, vcvtq_f32_s32(group_dot(w + g * group, x + g * group, group)), ws[g] * xs[g]);
  return vaddvq_f32(vaddq_f32(a0, a1));
}

}  // namespace

void q8_rows_dotprod(const int8_t* W, const float* ws, int r0, int r1, const int8_t* x, const float* xs, int n,
                     int group, float* out) {
  const size_t G = size_t(n / group);
  if (group == 32) {
    for (int r = r0; r < r1; ++r) out[r - r0] = dot_q8_g32(W + size_t(r) * size_t(n), ws + size_t(r) * G, x, xs, n);
    return;
  }
  for (int r = r0; r < r1; ++r) out[r - r0] = dot_q8(W + size_t(r) * size_t(n), ws + size_t(r) * G, x, xs, n, group);
}

}  // namespace anetrain::arm
