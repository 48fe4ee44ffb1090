// The bf16 tile products and packers (attention_tiles_bf16.h). One block of C is 16 rows × 64
// columns in four AMX accumulator tiles (0–3); per 16 pairs of the sum, one A tile (4) and a B
// tile per 16 columns, alternating between tiles 5 and 6 so that a load does not wait for the
// product still reading the other. The block then goes through memory, scaled and added to C
// with AVX-512. Compiled by target attribute, called only where available() says so.
#include "backends/cpu/packed_simd.h"  // first: the intrinsics, and GCC 12's false warnings off
#include "backends/cpu/attention_tiles_bf16.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <algorithm>

#include "core/cpu_features.h"
#include "core/error.h"

namespace anetrain::bf16_tiles {

#if defined(__x86_64__)
#define ANETRAIN_AVX512 __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define ANETRAIN_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))

bool available() {
  static const bool granted = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool amx_bf16 = (d >> 22) & 1u, tile = (d >> 24) & 1u;
    if (!tile || !amx_bf16 || !__builtin_cpu_supports("avx512bf16") || !__builtin_cpu_supports("avx512bw"))
      return false;
    // Linux gives a process the tile registers' state only on request (for every thread).
    constexpr long kRequestStatePermission = 0x1023, kTileData = 18;
    return syscall(SYS_arch_prctl, kRequestStatePermission, kTileData) == 0;
  }();
  return granted && x86_level() >= X86Level::amx;  // ANETRAIN_CPU_LEVEL below amx: fp32 attention
}

namespace {

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

ANETRAIN_AVX512 inline __mmask16 lanes(int n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// 32 fp32 values (a then b) as 32 bf16 in order: 16 words, each a pair of consecutive values.
ANETRAIN_AVX512 inline __m512i to_pairs(__m512 a, __m512 b) { return __m512i(_mm512_cvtne2ps_pbh(b, a)); }

// Word c of the result = (a[c], b[c]): two rows' values at one column, interleaved.
ANETRAIN_AVX512 inline __m512i interleave(__m512 a, __m512 b) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                       5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, to_pairs(a, b));
}

// Row p's 16 words at column c of the row pairs (x[2p], x[2p+1]), the odd row zero past `rows`.
ANETRAIN_AVX512 inline __m512i row_pair(const float* x, size_t ldx, int rows, int cols, int p, int c) {
  const __mmask16 m = lanes(cols - c);
  const float* x0 = x + size_t(2 * p) * ldx;
  const __m512 a = 2 * p < rows ? _mm512_maskz_loadu_ps(m, x0 + c) : _mm512_setzero_ps();
  const __m512 b = 2 * p + 1 < rows ? _mm512_maskz_loadu_ps(m, x0 + ldx + c) : _mm512_setzero_ps();
  return interleave(a, b);
}

#define ANETRAIN_AMX_COLUMN(T, TB, v)                                                      \
  if (nv > v) {                                                                           \
    _tile_loadd(TB, B + size_t(k) * ldb + 16 * v, long(ldb * 4));                         \
    _tile_dpbf16ps(T, 4, TB);                                                             \
  }

ANETRAIN_AMX void block(int nv, int Kp, const uint32_t* A, size_t lda, const uint32_t* B, size_t ldb, float* out) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  asm volatile("" ::: "memory");  // the tile loads read memory the asm does not name
  for (int k = 0; k < Kp; k += 16) {
    _tile_loadd(4, A + k, long(lda * 4));
    ANETRAIN_AMX_COLUMN(0, 5, 0)
    ANETRAIN_AMX_COLUMN(1, 6, 1)
    ANETRAIN_AMX_COLUMN(2, 5, 2)
    ANETRAIN_AMX_COLUMN(3, 6, 3)
  }
  _tile_stored(0, out, 256);
  if (nv > 1) _tile_stored(1, out + 16, 256);
  if (nv > 2) _tile_stored(2, out + 32, 256);
  if (nv > 3) _tile_stored(3, out + 48, 256);
  asm volatile("" ::: "memory");
}
#undef ANETRAIN_AMX_COLUMN

}  // namespace

namespace {

ANETRAIN_AMX void configure_tiles() {
  TileConfig cfg;
  for (int t = 0; t < 7; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;  // C 0–3, A 4, B 5–6: 16 × 64 bytes
  asm volatile("" ::: "memory");  // ldtilecfg's asm names only the first bytes as its input
  _tile_loadconfig(&cfg);
}

ANETRAIN_AMX void release_tiles() { _tile_release(); }

}  // namespace

// Through helpers: GCC applies no target attribute to a constructor or destructor, so a build for
// a CPU without AMX could not compile the tile intrinsics in their bodies.
ThreadTiles::ThreadTiles() { configure_tiles(); }

ThreadTiles::~ThreadTiles() { release_tiles(); }

ANETRAIN_AVX512 void pack_rows(const float* x, size_t ldx, int rows, int cols, uint32_t* out, size_t ldo) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + size_t(r) * ldx;
    uint32_t* o = out + size_t(r) * ldo;
    for (int c = 0; c < 2 * round16(pairs(cols)); c += 32) {  // zero words up to round16(pairs)
      const __m512 a = _mm512_maskz_loadu_ps(lanes(cols - c), xr + c);
      const __m512 b = _mm512_maskz_loadu_ps(lanes(cols - c - 16), xr + c + 16);
      _mm512_storeu_si512(o + c / 2, to_pairs(a, b));
    }
  }
}

ANETRAIN_AVX512 void pack_row_pairs(const float* x, size_t ldx, int rows, int cols, uint32_t* out, size_t ldo) {
  for (int p = 0; p < round16(pairs(rows)); ++p)
    for (int c = 0; c < round16(cols); c += 16) _mm512_storeu_si512(out + size_t(p) * ldo + c, row_pair(x, ldx, rows, cols, p, c));
}

// t[j] = word j of rows r[0..15]: a 16 × 16 transpose of 32-bit words, in three steps: words
// within 128-bit lanes (by dword, then qword), then the lanes themselves.
ANETRAIN_AVX512 inline void transpose16(__m512i (&r)[16]) {
  __m512i a[16];
  for (int i = 0; i < 16; i += 2) {
    a[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    a[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // r[i + c], lane L: rows i..i+3 at column 4L + c.
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(a[i], a[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(a[i], a[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(a[i + 1], a[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(a[i + 1], a[i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i e0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x44), e1 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xEE);
    const __m512i e2 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x44),
                  e3 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xEE);
    a[c] = _mm512_shuffle_i32x4(e0, e2, 0x88);
    a[4 + c] = _mm512_shuffle_i32x4(e0, e2, 0xDD);
    a[8 + c] = _mm512_shuffle_i32x4(e1, e3, 0x88);
    a[12 + c] = _mm512_shuffle_i32x4(e1, e3, 0xDD);
  }
  for (int j = 0; j < 16; ++j) r[j] = a[j];
}

ANETRAIN_AVX512 void pack_cols(const float* x, size_t ldx, int rows, int cols, uint32_t* out, size_t ldo) {
  for (int r0 = 0; r0 < rows; r0 += 16)
    for (int c = 0; c < 2 * round16(pairs(cols)); c += 32) {  // 16 pairs of 16 rows at a time
      __m512i w[16];
      for (int i = 0; i < 16; ++i) {
        const float* xr = x + size_t(r0 + i) * ldx;
        w[i] = r0 + i < rows ? to_pairs(_mm512_maskz_loadu_ps(lanes(cols - c), xr + c),
                                        _mm512_maskz_loadu_ps(lanes(cols - c - 16), xr + c + 16))
                             : _mm512_setzero_si512();
      }
      transpose16(w);
      for (int j = 0; j < 16; ++j) _mm512_storeu_si512(out + size_t(c / 2 + j) * ldo + r0, w[j]);
    }
}

ANETRAIN_AVX512 void pack_row_pairs_transposed(const float* x, size_t ldx, int rows, int cols, uint32_t* out,
                                               size_t ldo) {
  for (int p0 = 0; p0 < pairs(rows); p0 += 16)  // 16 row pairs × 16 columns at a time
    for (int c = 0; c < cols; c += 16) {
      __m512i w[16];
      for (int i = 0; i < 16; ++i) w[i] = row_pair(x, ldx, rows, cols, p0 + i, c);
      transpose16(w);
      for (int j = 0; j < 16; ++j) _mm512_storeu_si512(out + size_t(c + j) * ldo + p0, w[j]);
    }
}

ANETRAIN_AVX512 void gemm(int M, int N, int Kp, const uint32_t* A, size_t lda, const uint32_t* B, size_t ldb, float* C,
                          size_t ldc, float alpha, bool accumulate) {
  alignas(64) float out[16 * 64];
  const __m512 scale = _mm512_set1_ps(alpha);
  for (int n0 = 0; n0 < N; n0 += 64) {
    const int n = std::min(64, N - n0), nv = (n + 15) / 16;
    for (int m0 = 0; m0 < M; m0 += 16) {
      block(nv, Kp, A + size_t(m0) * lda, lda, B + n0, ldb, out);
      for (int r = 0; r < std::min(16, M - m0); ++r)
        for (int v = 0; v < nv; ++v) {
          const __mmask16 m = lanes(n - 16 * v);
          float* c = C + size_t(m0 + r) * ldc + n0 + 16 * v;
          __m512 y = _mm512_mul_ps(_mm512_load_ps(out + r * 64 + 16 * v), scale);
          if (accumulate) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, c));
          _mm512_mask_storeu_ps(c, m, y);
        }
    }
  }
}

#else  // off x86-64 flash attention stays fp32

bool available() { return false; }
ThreadTiles::ThreadTiles() { fail("bf16 attention tiles: not on this CPU"); }
ThreadTiles::~ThreadTiles() = default;
void pack_rows(const float*, size_t, int, int, uint32_t*, size_t) { fail("bf16 attention tiles: not on this CPU"); }
void pack_row_pairs(const float*, size_t, int, int, uint32_t*, size_t) { fail("bf16 attention tiles: not on this CPU"); }
void pack_row_pairs_transposed(const float*, size_t, int, int, uint32_t*, size_t) {
  fail("bf16 attention tiles: not on this CPU");
}
void pack_cols(const float*, size_t, int, int, uint32_t*, size_t) { fail("bf16 attention tiles: not on this CPU"); }
void gemm(int, int, int, const uint32_t*, size_t, const uint32_t*, size_t, float*, size_t, float, bool) {
  fail("bf16 attention tiles: not on this CPU");
}

#endif

}  // namespace anetrain::bf16_tiles
