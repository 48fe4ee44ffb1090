// cpu products with packed weights (decoding and prefill): each thread streams a contiguous band
// of the stacked rows of all parts (one parallel region for a fused QKV or gate–up product), and
// each weight row is read once for all N activation rows, which stay in cache.
//   f32  — N > 4 goes to oneDNN; fewer rows are a vectorised dot per row.
//   bf16 — each 16-value load widened to fp32 by a shift and multiplied with fp32 activations
//          (exact products; the only rounding is the weights' own); a prompt's chunk
//          (kBf16GemmRows or more) on oneDNN's bf16 GEMM where the CPU multiplies bf16 natively.
//   q8_0 — AVX512-VNNI vpdpbusd on x + 128 (u8) × w (s8), minus 128·Σw (exact for any int8,
//          −128 in a file included); a scalar loop elsewhere. Activations are quantized by the reference's function, so the
//          integers match it bit for bit and only the float sum order differs. A prompt's chunk
//          (N > 4) goes to AMX-INT8 tile products where the CPU has them, else to register tiles
//          of 16 rows × 8 tokens on AVX512-VNNI (packed_prefill.h).
// The AVX-512 paths are chosen at run time (cpu_has_avx512_vnni), not by the build's -march.
// On aarch64 the kernels are kernels_arm.h's: NEON for every format, SDOT for Q8_0 where the CPU
// has FEAT_DotProd (core/cpu_features.h), and for a prompt's chunk register tiles of SDOT or,
// with FEAT_I8MM, SMMLA.
#include "backends/cpu/packed_simd.h"

#include <algorithm>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/packed_dot.h"
#include "backends/cpu/packed_prefill.h"
#include "core/cpu_features.h"
#include "core/dtype.h"
#include "core/error.h"
#if defined(__aarch64__)
#include "backends/cpu/kernels_arm.h"
#endif

namespace anetrain {

namespace {

#if defined(__x86_64__)
bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return has;
}

// Also lowered by ANETRAIN_CPU_LEVEL=avx512 (core/cpu_features.h), to run a CPU without VNNI's path.
bool cpu_has_avx512_vnni() {
  static const bool has = cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
  return has && x86_level() >= X86Level::avx512vnni;
}
#else  // other CPUs (Apple silicon, where the ane backend lives) take the portable loops
bool cpu_has_avx512() { return false; }
#endif

float dot_f32(const float* w, const float* x, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += w[i] * x[i];
  return s;
}

#if defined(__x86_64__)
// Four independent accumulators: one FMA chain per row left the loads waiting on its latency
// (a 768-wide matrix-vector product streamed 19 GB/s on 2 cores with one, 25–28 with four).
__attribute__((target("avx512f"))) float dot_f32_avx512(const float* w, const float* x, int n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), _mm512_loadu_ps(x + i + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), _mm512_loadu_ps(x + i + 48), a3);
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (; i < n; ++i) s += w[i] * x[i];
  return s;
}

#endif

float dot_bf16_scalar(const uint16_t* w, const float* x, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw"))) float dot_bf16_avx512(const uint16_t* w, const float* x, int n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512i w0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
    const __m512i w1 = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16)));
    a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w0, 16)), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w1, 16)), _mm512_loadu_ps(x + i + 16), a1);
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
  for (; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}
#endif

// Signed int8 × int8 per group. (The same sum written over the unsigned offset activations,
// w·(xu − 128), is miscompiled by GCC 12 at -O2 -march=native with AVX512-VNNI: its vectorised
// form returned wrong sums for 32 values. Kernels' tails use this form instead.)
float dot_q8_scalar(const int8_t* w, const float* ws, const int8_t* x, const float* xs, int n, int group) {
  float s = 0;
  for (int g = 0; g < n / group; ++g) {
    int32_t d = 0;
    for (int i = g * group; i < (g + 1) * group; ++i) d += int32_t(w[i]) * int32_t(x[i]);
    s += float(d) * ws[g] * xs[g];
  }
  return s;
}

#if defined(__x86_64__)
// The VNNI kernels take the activations offset to unsigned, xu = x + 128 (made once per call):
// vpdpbusd multiplies u8 by s8, so Σ x·w = Σ xu·w − 128·Σ w, and the second sum is one more
// vpdpbusd of the weights against a vector of 128s. Two multiply-adds per 64 bytes, where putting
// x's sign on w (abs, sign mask, masked negate) took four operations and measured slower.

// Groups of 32: one 64-byte load holds two groups, whose sums land in lanes 0–7 and 8–15.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) float dot_q8_g32(const int8_t* w, const float* ws,
                                                                      const int8_t* x, const uint8_t* xu,
                                                                      const float* xs, int n) {
  const __m512i zero = _mm512_setzero_si512(), c128 = _mm512_set1_epi8(char(0x80));
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
  int c = 0;
  for (; c + 2 <= n / 64; c += 2) {
    const __m512i w0 = _mm512_loadu_si512(w + 64 * c), w1 = _mm512_loadu_si512(w + 64 * c + 64);
    const __m512i d0 = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, _mm512_loadu_si512(xu + 64 * c), w0),
                                        _mm512_dpbusd_epi32(zero, c128, w0));
    const __m512i d1 = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, _mm512_loadu_si512(xu + 64 * c + 64), w1),
                                        _mm512_dpbusd_epi32(zero, c128, w1));
    const __m512 s0 = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(ws[2 * c] * xs[2 * c]),
                                           _mm512_set1_ps(ws[2 * c + 1] * xs[2 * c + 1]));
    const __m512 s1 = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(ws[2 * c + 2] * xs[2 * c + 2]),
                                           _mm512_set1_ps(ws[2 * c + 3] * xs[2 * c + 3]));
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), s0, acc0);
    acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), s1, acc1);
  }
  for (; c < n / 64; ++c) {
    const __m512i w0 = _mm512_loadu_si512(w + 64 * c);
    const __m512i d0 = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, _mm512_loadu_si512(xu + 64 * c), w0),
                                        _mm512_dpbusd_epi32(zero, c128, w0));
    const __m512 s0 = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(ws[2 * c] * xs[2 * c]),
                                           _mm512_set1_ps(ws[2 * c + 1] * xs[2 * c + 1]));
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), s0, acc0);
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  const int done = n / 64 * 64;  // a last lone group of 32
  if (done < n) s += dot_q8_scalar(w + done, ws + done / 32, x + done, xs + done / 32, n - done, 32);
  return s;
}

// Groups of exactly 64 (llama2.c version 2's default): one load per group, and the groups'
// scale products ws·xs made 16 at a time and taken by a lane permute, instead of two scalar
// loads, a multiply and a broadcast per group (measured: 32.7 → 36.4 GB/s streaming on 2 cores).
// (Helpers, not lambdas: GCC gives a lambda none of its enclosing function's target attribute, so
// a build for a CPU without AVX-512 could not compile the intrinsics inside one.)
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline __m512 q8_group64_dot(const int8_t* w,
                                                                                  const uint8_t* xu, int g) {
  const __m512i zero = _mm512_setzero_si512(), c128 = _mm512_set1_epi8(char(0x80));
  const __m512i wv = _mm512_loadu_si512(w + 64 * g);
  return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_dpbusd_epi32(zero, _mm512_loadu_si512(xu + 64 * g), wv),
                                             _mm512_dpbusd_epi32(zero, c128, wv)));
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) float dot_q8_only64(const int8_t* w, const float* ws,
                                                                         const uint8_t* xu, const float* xs, int n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
  const int G = n / 64;
  for (int g0 = 0; g0 < G; g0 += 16) {
    const int count = std::min(16, G - g0);
    const __mmask16 m = __mmask16((1u << count) - 1);
    const __m512 scale = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, ws + g0), _mm512_maskz_loadu_ps(m, xs + g0));
    int g = 0;
    for (; g + 2 <= count; g += 2) {
      acc0 = _mm512_fmadd_ps(q8_group64_dot(w, xu, g0 + g), _mm512_permutexvar_ps(_mm512_set1_epi32(g), scale), acc0);
      acc1 = _mm512_fmadd_ps(q8_group64_dot(w, xu, g0 + g + 1), _mm512_permutexvar_ps(_mm512_set1_epi32(g + 1), scale), acc1);
    }
    if (g < count) acc0 = _mm512_fmadd_ps(q8_group64_dot(w, xu, g0 + g), _mm512_permutexvar_ps(_mm512_set1_epi32(g), scale), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline __m512 q8_group_dot(const int8_t* w, const uint8_t* xu, int g,
                                                                                int group) {
  const __m512i zero = _mm512_setzero_si512(), c128 = _mm512_set1_epi8(char(0x80));
  __m512i dot = zero, bias = zero;
  for (int i = g * group; i < (g + 1) * group; i += 64) {
    const __m512i wv = _mm512_loadu_si512(w + i);
    dot = _mm512_dpbusd_epi32(dot, _mm512_loadu_si512(xu + i), wv);
    bias = _mm512_dpbusd_epi32(bias, c128, wv);
  }
  return _mm512_cvtepi32_ps(_mm512_sub_epi32(dot, bias));
}

// Larger multiples of 64: whole loads per group, one conversion per group.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) float dot_q8_g64(const int8_t* w, const float* ws,
                                                                      const int8_t*, const uint8_t* xu,
                                                                      const float* xs, int n, int group) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
  const int G = n / group;
  int g = 0;
  for (; g + 2 <= G; g += 2) {
    acc0 = _mm512_fmadd_ps(q8_group_dot(w, xu, g, group), _mm512_set1_ps(ws[g] * xs[g]), acc0);
    acc1 = _mm512_fmadd_ps(q8_group_dot(w, xu, g + 1, group), _mm512_set1_ps(ws[g + 1] * xs[g + 1]), acc1);
  }
  if (g < G) acc0 = _mm512_fmadd_ps(q8_group_dot(w, xu, g, group), _mm512_set1_ps(ws[g] * xs[g]), acc0);
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}
#else
// Never called off x86 (cpu_has_avx512 is false there); named so the dispatch compiles everywhere.
float dot_f32_avx512(const float* w, const float* x, int n) { return dot_f32(w, x, n); }
float dot_bf16_avx512(const uint16_t* w, const float* x, int n) { return dot_bf16_scalar(w, x, n); }
#endif

// Writes k(r) for rows [r0, r1) to out[0, r1 − r0): one loop per kernel, so the kernel is called
// directly (and inlined where the build targets the CPU) instead of through a pointer per row —
// per-row overhead is a fifth of a Q8_0 row's time when it is 768 bytes.
template <class Kernel>
void each_row(int r0, int r1, float* out, Kernel k) {
  for (int r = r0; r < r1; ++r) out[r - r0] = k(r);
}

}  // namespace

RowDot::RowDot(const MatrixRef& M) : fmt_(M.format), avx512_(cpu_has_avx512()) {
  if (fmt_ != WeightFormat::q8_0) return;
#if defined(__x86_64__)
  if (cpu_has_avx512_vnni() && M.group == 32) q8_ = Q8Kernel::vnni_g32;
  else if (cpu_has_avx512_vnni() && M.group == 64) q8_ = Q8Kernel::vnni_only64;
  else if (cpu_has_avx512_vnni() && M.group % 64 == 0) q8_ = Q8Kernel::vnni_g64;
#elif defined(__aarch64__)
  if (M.group > 0 && M.group % 16 == 0) q8_ = arm_features().dotprod ? Q8Kernel::dotprod : Q8Kernel::neon;
#endif
}

void RowDot::rows(const MatrixRef& M, int r0, int r1, const PackedActivation& a, int n, float* out) const {
  const int cols = M.cols;
  const size_t width = size_t(cols);
  const float* x = a.x + size_t(n) * width;
  switch (fmt_) {
    case WeightFormat::f32: {
      const float* W = static_cast<const float*>(M.data);
#if defined(__aarch64__)
      return arm::f32_rows_neon(W, r0, r1, x, cols, out);
#endif
      if (avx512_) each_row(r0, r1, out, [&](int r) { return dot_f32_avx512(W + size_t(r) * width, x, cols); });
      else each_row(r0, r1, out, [&](int r) { return dot_f32(W + size_t(r) * width, x, cols); });
      return;
    }
    case WeightFormat::bf16: {
      const uint16_t* W = static_cast<const uint16_t*>(M.data);
#if defined(__aarch64__)
      return arm::bf16_rows_neon(W, r0, r1, x, cols, out);
#endif
      if (avx512_) each_row(r0, r1, out, [&](int r) { return dot_bf16_avx512(W + size_t(r) * width, x, cols); });
      else each_row(r0, r1, out, [&](int r) { return dot_bf16_scalar(W + size_t(r) * width, x, cols); });
      return;
    }
    case WeightFormat::q8_0: {
      const int8_t* W = static_cast<const int8_t*>(M.data);
      const int group = M.group, G = cols / group;
      const int8_t* xq = a.q.data() + size_t(n) * width;
      [[maybe_unused]] const uint8_t* xu = a.u.data() + size_t(n) * width;  // the VNNI kernels' form
      const float* xs = a.scales.data() + size_t(n) * size_t(G);
      auto w = [&](int r) { return W + size_t(r) * width; };
      auto ws = [&](int r) { return M.scales + size_t(r) * size_t(G); };
      switch (q8_) {
#if defined(__x86_64__)
        case Q8Kernel::vnni_g32:
          return each_row(r0, r1, out, [&](int r) { return dot_q8_g32(w(r), ws(r), xq, xu, xs, cols); });
        case Q8Kernel::vnni_only64:
          return each_row(r0, r1, out, [&](int r) { return dot_q8_only64(w(r), ws(r), xu, xs, cols); });
        case Q8Kernel::vnni_g64:
          return each_row(r0, r1, out, [&](int r) { return dot_q8_g64(w(r), ws(r), xq, xu, xs, cols, group); });
#elif defined(__aarch64__)
        case Q8Kernel::neon: return arm::q8_rows_neon(W, ws(0), r0, r1, xq, xs, cols, group, out);
        case Q8Kernel::dotprod: return arm::q8_rows_dotprod(W, ws(0), r0, r1, xq, xs, cols, group, out);
#endif
        default:
          return each_row(r0, r1, out, [&](int r) { return dot_q8_scalar(w(r), ws(r), xq, xs, cols, group); });
      }
    }
  }
}

Q8Prefill q8_prefill_path(const MatrixRef& W, int N) {
  if (W.format != WeightFormat::q8_0 || N <= kQ8TiledRows) return Q8Prefill::rows;
  if (q8_amx_takes(W)) return Q8Prefill::amx_tiles;
  if (q8_vnni_gemm_takes(W)) return Q8Prefill::vnni_tiles;
#if defined(__aarch64__)
  if (W.group % 16 == 0 && arm_features().i8mm) return Q8Prefill::smmla_tiles;
  if (W.group % 16 == 0 && arm_features().dotprod) return Q8Prefill::sdot_tiles;
#endif
  return Q8Prefill::rows;
}

void check_fused_parts(const MatrixRef* W, int parts, const char* what) {
  if (parts < 1 || parts > 4) fail(std::string(what) + ": 1 to 4 parts");
  const int cols = W[0].cols;
  for (int p = 0; p < parts; ++p)
    if (W[p].cols != cols || W[p].format != W[0].format || W[p].group != W[0].group)
      fail(std::string(what) + ": the parts of a fused product must share width and format");
  if (W[0].format == WeightFormat::q8_0 && (W[0].group <= 0 || cols % W[0].group != 0))
    fail(std::string(what) + ": Q8_0 group " + std::to_string(W[0].group) + " does not divide the width " +
         std::to_string(cols));
}

void CpuBackend::linear_fwd_packed(const float* x, int N, const MatrixRef* W, float* const* y, int parts) {
  check_fused_parts(W, parts, "linear_fwd_packed");
  const int cols = W[0].cols;
  const WeightFormat fmt = W[0].format;
  if (fmt == WeightFormat::f32 && N > 4) {
    for (int p = 0; p < parts; ++p)
      gemm_.f32(x, false, static_cast<const float*>(W[p].data), true, y[p], N, W[p].rows, cols, false);
    return;
  }
  // A prompt's chunk of bf16 rows: the product bf16 training uses (oneDNN, AMX-BF16 where the CPU
  // has it), activations rounded to bf16 — where the CPU multiplies bf16 natively; decoding's
  // rows keep the exact fp32 activations.
  static const bool native_bf16 = default_precision() == Precision::bf16;
  if (fmt == WeightFormat::bf16 && N >= kBf16GemmRows && native_bf16) {
    const uint16_t* xb = bf16_activation(x, size_t(N) * size_t(cols), 0);
    for (int p = 0; p < parts; ++p)
      gemm_.bf16(xb, false, static_cast<const uint16_t*>(W[p].data), true, y[p], N, W[p].rows, cols, false);
    return;
  }
  // A prompt's chunk of Q8_0 rows: tile products where the CPU has them (decoding's few rows
  // would pad the tiles' 16 tokens).
  const Q8Prefill q8_path = q8_prefill_path(W[0], N);
  if (q8_path == Q8Prefill::amx_tiles) return q8_gemm_amx(x, N, W, y, parts, amx_);
  if (q8_path == Q8Prefill::vnni_tiles) return q8_gemm_vnni(x, N, W, y, parts, vnni_);
  // Activations quantized once for all parts and threads.
  packed_x_.prepare(x, N, cols, fmt, W[0].group);
  const RowDot dot(W[0]);
  const StackedRows stacked(W, parts);

  // Guided over blocks of 16 rows: big contiguous bands first (one stream per thread), then
  // smaller pieces, so a thread that a busy neighbour slowed is helped out at the end instead of
  // waited for (measured a few percent over static on this shared 2-core machine; dynamic lost a
  // third). Within a block, each activation row takes the block's rows in one kernel loop; the
  // block (≤ 48 KB) stays in cache for the next activation row.
  constexpr int kBlock = 16;
  const int blocks = (stacked.total + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(guided)
  for (int blk = 0; blk < blocks; ++blk)
    stacked.each_part(blk * kBlock, std::min(stacked.total, (blk + 1) * kBlock), [&](int p, int r0, int r1) {
#if defined(__aarch64__)
      // aarch64's prefill tiles: the block's rows times every token, 4 × 4 at a time.
      if (q8_path != Q8Prefill::rows)
        return (q8_path == Q8Prefill::smmla_tiles ? arm::q8_tiles_i8mm : arm::q8_tiles_dotprod)(
            static_cast<const int8_t*>(W[p].data), W[p].scales, r0, r1, packed_x_.q.data(),
            packed_x_.scales.data(), N, cols, W[p].group, y[p] + r0, size_t(W[p].rows));
#endif
      for (int n = 0; n < N; ++n) dot.rows(W[p], r0, r1, packed_x_, n, y[p] + size_t(n) * W[p].rows + r0);
    });
}

}  // namespace anetrain
