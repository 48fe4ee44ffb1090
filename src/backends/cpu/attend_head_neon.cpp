// Decode attention for one query head on aarch64 (Armv8.0 NEON): the scores K·q, the softmax
// (fast_math.h's, shared with every other path) and Vᵀ·p, for head widths 16, 32, 64 and 128.
// Written with the widths as template constants so that q and the output stay in registers
// instead of being reloaded and stored for every cached position (what plain loops compile to,
// as measured for the x86 kernel in attend_head.cpp).
#if !defined(__aarch64__)
#error "attend_head_neon.cpp is built for aarch64 only"
#endif
#include <arm_neon.h>

#include "backends/cpu/fast_math.h"
#include "backends/cpu/kernels_arm.h"

namespace anetrain::arm {

namespace {

// C = hd / 4 vectors per row. Four chains per score, so a 128-wide row is eight dependent FMLAs
// deep rather than 32; consecutive positions are independent and overlap in the core.
template <int C>
void scores(const float* q, const float* k, int ldkv, int n, float scale, float* p) {
  float32x4_t qv[C];
  for (int c = 0; c < C; ++c) qv[c] = vld1q_f32(q + 4 * c);
  for (int t = 0; t < n; ++t) {
    const float* kr = k + size_t(t) * size_t(ldkv);
    float32x4_t a[4];
    for (int c = 0; c < 4; ++c) a[c] = vmulq_f32(vld1q_f32(kr + 4 * c), qv[c]);
    for (int c = 4; c < C; ++c) a[c % 4] = vfmaq_f32(a[c % 4], vld1q_f32(kr + 4 * c), qv[c]);
    p[t] = scale * vaddvq_f32(vaddq_f32(vaddq_f32(a[0], a[1]), vaddq_f32(a[2], a[3])));
  }
}

// out[4·c0, 4·(c0 + B)) = Σ_t p[t]·V[t, …] with B output vectors held in registers. B ≤ 8 keeps
// two sets (even and odd positions) so consecutive FMLAs on one vector do not wait on each other;
// B = 16 already has sixteen independent chains per position and no registers for a second set.
template <int B>
void weighted_values(const float* v, int ldkv, int n, const float* p, int c0, float* out) {
  constexpr int S = B <= 8 ? 2 : 1;
  float32x4_t acc[S][B];
  for (int h = 0; h < S; ++h)
    for (int c = 0; c < B; ++c) acc[h][c] = vdupq_n_f32(0.0f);
  int t = 0;
  for (; t + S <= n; t += S)
    for (int h = 0; h < S; ++h) {
      const float* vr = v + size_t(t + h) * size_t(ldkv) + 4 * c0;
      const float pt = p[t + h];
      for (int c = 0; c < B; ++c) acc[h][c] = vfmaq_n_f32(acc[h][c], vld1q_f32(vr + 4 * c), pt);
    }
  for (; t < n; ++t) {
    const float* vr = v + size_t(t) * size_t(ldkv) + 4 * c0;
    for (int c = 0; c < B; ++c) acc[0][c] = vfmaq_n_f32(acc[0][c], vld1q_f32(vr + 4 * c), p[t]);
  }
  for (int c = 0; c < B; ++c) {
    float32x4_t s = acc[0][c];
    for (int h = 1; h < S; ++h) s = vaddq_f32(s, acc[h][c]);
    vst1q_f32(out + 4 * (c0 + c), s);
  }
}

template <int C>
void attend(const float* q, const float* k, const float* v, int ldkv, int n, float scale, float* p, float* out) {
  scores<C>(q, k, ldkv, n, scale, p);
  softmax_row(p, n);
  if constexpr (C <= 16) {
    weighted_values<C>(v, ldkv, n, p, 0, out);
  } else {  // hd = 128: two passes of 64 columns over the positions (p stays in L1)
    for (int c0 = 0; c0 < C; c0 += 16) weighted_values<16>(v, ldkv, n, p, c0, out);
  }
}

}  // namespace

void attend_head_neon(const float* q, const float* k, const float* v, int ldkv, int n, int hd, float scale, float* p,
                      float* out) {
  switch (hd) {
    case 16: return attend<4>(q, k, v, ldkv, n, scale, p, out);
    case 32: return attend<8>(q, k, v, ldkv, n, scale, p, out);
    case 64: return attend<16>(q, k, v, ldkv, n, scale, p, out);
    case 128: return attend<32>(q, k, v, ldkv, n, scale, p, out);
    default: break;  // the caller dispatches only these widths
  }
}

}  // namespace anetrain::arm
