// Decode attention for one query head (attend_head.h). The x86 kernel is compiled with a target
// attribute and chosen by __builtin_cpu_supports; the aarch64 one is in attend_head_neon.cpp.
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstddef>

#include "backends/cpu/attend_head.h"
#include "backends/cpu/fast_math.h"
#if defined(__aarch64__)
#include "backends/cpu/kernels_arm.h"
#endif

namespace anetrain {

namespace {

// One query head over the cache's n positions: p = softmax(K·q/√hd), out = Vᵀ·p.
void attend_head_scalar(const float* q, const float* k, const float* v, int ldkv, int n, int hd, float scale, float* p,
                        float* out) {
  for (int t = 0; t < n; ++t) {
    const float* kr = k + size_t(t) * ldkv;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < hd; ++j) s += kr[j] * q[j];
    p[t] = scale * s;
  }
  softmax_row(p, n);
  std::fill(out, out + hd, 0.0f);
  for (int t = 0; t < n; ++t) {
    const float* vr = v + size_t(t) * ldkv;
    const float pt = p[t];
#pragma omp simd
    for (int j = 0; j < hd; ++j) out[j] += pt * vr[j];
  }
}

#if defined(__x86_64__)
// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*(), which its flow
// analysis then reports as uninitialised (GCC bug 105593); the values are fully written.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// The same for hd = 16·C with q and the output held in registers: written with plain loops the
// compiler reloaded and stored `out` for every position (~130 cycles per cached position; the
// head's attention was an eighth of a Q8_0 token).
template <int C>
__attribute__((target("avx512f"))) void attend_head_avx512(const float* q, const float* k, const float* v, int ldkv,
                                                           int n, float scale, float* p, float* out) {
  __m512 qv[C];
  for (int c = 0; c < C; ++c) qv[c] = _mm512_loadu_ps(q + 16 * c);
  for (int t = 0; t < n; ++t) {
    const float* kr = k + size_t(t) * ldkv;
    __m512 a = _mm512_mul_ps(_mm512_loadu_ps(kr), qv[0]);
    for (int c = 1; c < C; ++c) a = _mm512_fmadd_ps(_mm512_loadu_ps(kr + 16 * c), qv[c], a);
    p[t] = scale * _mm512_reduce_add_ps(a);
  }
  softmax_row(p, n);
  // Two sets of accumulators (even and odd positions) so consecutive FMAs do not wait on each other.
  __m512 acc[2][C];
  for (int c = 0; c < C; ++c) acc[0][c] = acc[1][c] = _mm512_setzero_ps();
  int t = 0;
  for (; t + 2 <= n; t += 2)
    for (int h = 0; h < 2; ++h) {
      const float* vr = v + size_t(t + h) * ldkv;
      const __m512 pt = _mm512_set1_ps(p[t + h]);
      for (int c = 0; c < C; ++c) acc[h][c] = _mm512_fmadd_ps(pt, _mm512_loadu_ps(vr + 16 * c), acc[h][c]);
    }
  if (t < n) {
    const float* vr = v + size_t(t) * ldkv;
    const __m512 pt = _mm512_set1_ps(p[t]);
    for (int c = 0; c < C; ++c) acc[0][c] = _mm512_fmadd_ps(pt, _mm512_loadu_ps(vr + 16 * c), acc[0][c]);
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(out + 16 * c, _mm512_add_ps(acc[0][c], acc[1][c]));
}
#pragma GCC diagnostic pop

#endif

[[maybe_unused]] bool simd_width(int hd) { return hd == 16 || hd == 32 || hd == 64 || hd == 128; }

#if defined(__x86_64__)
bool cpu_has_avx512f() {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512;
}
#endif

}  // namespace

void attend_head(const float* q, const float* k, const float* v, int ldkv, int n, int hd, float scale, float* p,
                 float* out) {
#if defined(__x86_64__)
  if (cpu_has_avx512f()) {
    switch (hd) {
      case 16: return attend_head_avx512<1>(q, k, v, ldkv, n, scale, p, out);
      case 32: return attend_head_avx512<2>(q, k, v, ldkv, n, scale, p, out);
      case 64: return attend_head_avx512<4>(q, k, v, ldkv, n, scale, p, out);
      case 128: return attend_head_avx512<8>(q, k, v, ldkv, n, scale, p, out);
      default: break;
    }
  }
#elif defined(__aarch64__)
  // Advanced SIMD is part of every aarch64 CPU: no run-time check needed.
  if (simd_width(hd)) return arm::attend_head_neon(q, k, v, ldkv, n, hd, scale, p, out);
#endif
  attend_head_scalar(q, k, v, ldkv, n, hd, scale, p, out);
}

const char* attend_head_kernel(int hd) {
#if defined(__x86_64__)
  if (cpu_has_avx512f() && simd_width(hd)) return "avx512";
#elif defined(__aarch64__)
  if (simd_width(hd)) return "neon";
#endif
  return "portable";
}

}  // namespace anetrain
