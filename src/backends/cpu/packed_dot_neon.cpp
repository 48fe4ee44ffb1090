// Packed-weight row kernels for any aarch64 CPU (Armv8.0 Advanced SIMD; compiled without extra
// -march flags). Decoding streams each weight once per token, so the kernels are shaped to keep
// loads flowing: several independent accumulators, so that no FMLA waits on the previous one.
//
// Why bf16 weights are widened and not fed to BFDOT (FEAT_BF16): BFDOT multiplies bf16 by bf16,
// so the fp32 activations would first have to be rounded to bf16 — a second rounding the bf16
// contract excludes ("exact products; the only rounding is the weights' own"). And BFDOT itself
// "ignores the FPCR" (Arm's instruction description): without FEAT_EBF16 its pair sums are
// rounded to odd and denormals flushed, unlike an fp32 FMA. A bf16 value widened to fp32 is a
// single shift (SHLL), after which FMLA gives the exact product rounded once into the sum, the
// same rule as the x86 kernel; the stream of 2-byte weights, not the arithmetic, bounds the row.
#if !defined(__aarch64__)
#error "packed_dot_neon.cpp is built for aarch64 only"
#endif
#include <arm_neon.h>

#include <cmath>

#include "backends/cpu/kernels_arm.h"
#include "core/dtype.h"

namespace anetrain::arm {

namespace {

float sum8(const float32x4_t a[8]) {
  const float32x4_t s = vaddq_f32(vaddq_f32(vaddq_f32(a[0], a[1]), vaddq_f32(a[2], a[3])),
                                  vaddq_f32(vaddq_f32(a[4], a[5]), vaddq_f32(a[6], a[7])));
  return vaddvq_f32(s);
}

// Eight accumulators, 32 values per step: FMLA's latency (3–4 cycles) times the two to four FMLA
// pipes of current cores needs that many chains in flight to not stall the loads.
float dot_f32(const float* w, const float* x, int n) {
  float32x4_t a[8];
  for (auto& v : a) v = vdupq_n_f32(0.0f);
  int i = 0;
  for (; i + 32 <= n; i += 32)
    for (int c = 0; c < 8; ++c) a[c] = vfmaq_f32(a[c], vld1q_f32(w + i + 4 * c), vld1q_f32(x + i + 4 * c));
  for (; i + 4 <= n; i += 4) a[0] = vfmaq_f32(a[0], vld1q_f32(w + i), vld1q_f32(x + i));
  float s = sum8(a);
  for (; i < n; ++i) s += w[i] * x[i];
  return s;
}

// bf16 → fp32 is the value's 16 bits moved to the top of 32: SHLL #16 (vshll_n_u16) per half.
inline float32x4_t widen_low(uint16x8_t h) { return vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)); }
inline float32x4_t widen_high(uint16x8_t h) { return vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)); }

float dot_bf16(const uint16_t* w, const float* x, int n) {
  float32x4_t a[8];
  for (auto& v : a) v = vdupq_n_f32(0.0f);
  int i = 0;
  for (; i + 32 <= n; i += 32)
    for (int c = 0; c < 4; ++c) {
      const uint16x8_t h = vld1q_u16(w + i + 8 * c);
      a[2 * c] = vfmaq_f32(a[2 * c], widen_low(h), vld1q_f32(x + i + 8 * c));
      a[2 * c + 1] = vfmaq_f32(a[2 * c + 1], widen_high(h), vld1q_f32(x + i + 8 * c + 4));
    }
  for (; i + 8 <= n; i += 8) {
    const uint16x8_t h = vld1q_u16(w + i);
    a[0] = vfmaq_f32(a[0], widen_low(h), vld1q_f32(x + i));
    a[1] = vfmaq_f32(a[1], widen_high(h), vld1q_f32(x + i + 4));
  }
  float s = sum8(a);
  for (; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}

// Σ over one group of int8 × int8: SMULL/SMULL2 make eight int16 products each (|product| ≤
// 128·128 = 2¹⁴ fits, −128 from a file included) and SADALP adds neighbouring pairs into the
// int32 lanes, so nothing saturates or wraps for any group size the formats allow.
inline int32x4_t group_dot(const int8_t* w, const int8_t* x, int group) {
  int32x4_t acc = vdupq_n_s32(0);
  for (int i = 0; i < group; i += 16) {
    const int8x16_t wv = vld1q_s8(w + i), xv = vld1q_s8(x + i);
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(wv), vget_low_s8(xv)));
    acc = vpadalq_s16(acc, vmull_high_s8(wv, xv));
  }
  return acc;
}

// A row: each group's exact sum, scaled and added in group order (kernels_arm.h says why).
float dot_q8(const int8_t* w, const float* ws, const int8_t* x, const float* xs, int n, int group) {
  return q8_sum_in_group_order(n / group, ws, xs, [&](int g) {
    return vaddvq_s32(group_dot(w + size_t(g) * size_t(group), x + size_t(g) * size_t(group), group));
  });
}

}  // namespace

void f32_rows_neon(const float* W, int r0, int r1, const float* x, int n, float* out) {
  for (int r = r0; r < r1; ++r) out[r - r0] = dot_f32(W + size_t(r) * size_t(n), x, n);
}

void bf16_rows_neon(const uint16_t* W, int r0, int r1, const float* x, int n, float* out) {
  for (int r = r0; r < r1; ++r) out[r - r0] = dot_bf16(W + size_t(r) * size_t(n), x, n);
}

void q8_rows_neon(const int8_t* W, const float* ws, int r0, int r1, const int8_t* x, const float* xs, int n,
                  int group, float* out) {
  const size_t G = size_t(n / group);
  for (int r = r0; r < r1; ++r) out[r - r0] = dot_q8(W + size_t(r) * size_t(n), ws + size_t(r) * G, x, xs, n, group);
}

// The reference's steps, four lanes at a time: FMAX/FABS give the same maximum as its scalar
// max (NaN is caught separately, as it does, so the scale is exactly NAN); FDIV is the same
// division; FRINTA is round-half-away (the reference's trunc-and-compare, exact for every
// float); the clamps and the NaN → 0 select are its compares.
void quantize_q8_0_neon(const float* x, size_t n, int group, int8_t* q, float* scales) {
  const float32x4_t hi = vdupq_n_f32(127.0f), lo = vdupq_n_f32(-127.0f), zero = vdupq_n_f32(0.0f);
  for (size_t g = 0; g < n / size_t(group); ++g) {
    const float* xg = x + g * size_t(group);
    int8_t* qg = q + g * size_t(group);
    float32x4_t m = zero;
    uint32x4_t not_equal = vdupq_n_u32(0);
    for (int i = 0; i < group; i += 4) {
      const float32x4_t v = vld1q_f32(xg + i);
      m = vmaxq_f32(m, vabsq_f32(v));
      not_equal = vorrq_u32(not_equal, vmvnq_u32(vceqq_f32(v, v)));
    }
    const bool nan = vmaxvq_u32(not_equal) != 0;
    const float scale = nan ? NAN : vmaxvq_f32(m) / 127.0f;
    scales[g] = scale;
    if (!(scale > 0.0f)) {
      for (int i = 0; i < group; ++i) qg[i] = 0;
      continue;
    }
    const float32x4_t s = vdupq_n_f32(scale);
    auto quantize4 = [&](int i) {
      float32x4_t v = vrndaq_f32(vdivq_f32(vld1q_f32(xg + i), s));
      v = vminq_f32(v, hi);  // FMIN/FMAX keep a NaN (∞/∞), which the select below turns into 0
      v = vmaxq_f32(v, lo);
      v = vbslq_f32(vceqq_f32(v, v), v, zero);
      return vcvtq_s32_f32(v);
    };
    for (int i = 0; i < group; i += 16) {
      const int16x8_t a = vcombine_s16(vmovn_s32(quantize4(i)), vmovn_s32(quantize4(i + 4)));
      const int16x8_t b = vcombine_s16(vmovn_s32(quantize4(i + 8)), vmovn_s32(quantize4(i + 12)));
      vst1q_s8(qg + i, vcombine_s8(vmovn_s16(a), vmovn_s16(b)));
    }
  }
}

}  // namespace anetrain::arm
