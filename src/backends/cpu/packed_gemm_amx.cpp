// The Q8_0 AMX tile products (packed_prefill.h). One tile product, C(16×16 int32) += A·B:
//   A: 16 weight rows × K bytes, read in place (row stride = the matrix width);
//   B: K/4 rows of 64 bytes, each holding 4 consecutive values of 16 tokens — the activations
//      rearranged once per call, a transpose of each 16-token block's rows taken 4 bytes at a time;
//   C: weight row n × token m. K is the group (32), or 64 bytes at a time for larger groups.
// After each group, C goes through memory to 16 vectors, converted to fp32 and accumulated with
// the scale products sw[n]·sx[m]. Two C tiles alternate, so that the next group's tile product
// runs while this group's integers are scaled.
#include "backends/cpu/packed_simd.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "backends/cpu/packed_prefill.h"
#include "core/cpu_features.h"

namespace anetrain {

#if defined(__x86_64__)
namespace {

constexpr int kTile = 16;  // weight rows per A tile, tokens per B tile

bool amx_granted() {
  static const bool granted = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool tile = (d >> 24) & 1u, int8 = (d >> 25) & 1u;
    if (!tile || !int8 || !__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return false;
    // Linux gives a process the tile registers' 8 KB of state only on request; without it the
    // first tile instruction faults. The grant covers every thread of the process.
    constexpr long kRequestStatePermission = 0x1023, kTileData = 18;
    return syscall(SYS_arch_prctl, kRequestStatePermission, kTileData) == 0;
  }();
  return granted;
}

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Even groups in tiles 0 (C), 2 (A), 3 (B); odd groups in 1, 4, 5: a tile load into a tile the
// previous product still reads would wait for that product.
__attribute__((target("amx-tile,amx-int8"))) void configure_tiles(int K) {
  TileConfig cfg;
  cfg.colsb[0] = cfg.colsb[1] = 64, cfg.rows[0] = cfg.rows[1] = kTile;
  cfg.colsb[2] = cfg.colsb[4] = uint16_t(K), cfg.rows[2] = cfg.rows[4] = kTile;
  cfg.colsb[3] = cfg.colsb[5] = 64, cfg.rows[3] = cfg.rows[5] = uint8_t(K / 4);
  asm volatile("" ::: "memory");  // ldtilecfg's asm names only the first bytes as its input
  _tile_loadconfig(&cfg);
}

struct Block {
  const int8_t* w;       // 16 weight rows, `stride` bytes apart
  const float* ws;       // their group scales, G per row
  size_t stride;
  const int8_t* tokens;  // this token block in B's layout
  const float* xs;       // its group scales, 16 per group
  int G, K, steps;       // groups, bytes per tile product, tile products per group
};

// The integer tile products take their tile numbers as literals (the intrinsics paste them into
// the instruction's text), hence a macro for "C tile T := group g" through tiles TA and TB.
#define ANETRAIN_AMX_GROUP(T, TA, TB, g)                                                \
  do {                                                                                  \
    _tile_zero(T);                                                                      \
    for (int s = 0; s < b.steps; ++s) {                                                 \
      const size_t k = size_t(g) * size_t(b.steps * b.K) + size_t(s * b.K);             \
      _tile_loadd(TA, b.w + k, long(b.stride));                                         \
      _tile_loadd(TB, b.tokens + k * kTile, 64);                                        \
      _tile_dpbssd(T, TA, TB);                                                          \
    }                                                                                   \
  } while (0)

__attribute__((target("avx512f"))) inline void scale_group(__m512 (&acc)[kTile], const int32_t* c,
                                                           const Block& b, int g) {
  const __m512 xs = _mm512_loadu_ps(b.xs + size_t(g) * kTile);
  for (int n = 0; n < kTile; ++n) {
    const __m512 s = _mm512_mul_ps(xs, _mm512_set1_ps(b.ws[size_t(n) * size_t(b.G) + size_t(g)]));
    acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + n * kTile)), s, acc[n]);
  }
}

// out[n·16 + m] = Σ_g sw[n,g]·sx[m,g]·(integer dot of row n and token m over group g).
__attribute__((target("amx-tile,amx-int8,avx512f,avx512bw"))) void block_product(const Block& b, float* out) {
  alignas(64) int32_t c0[kTile * kTile], c1[kTile * kTile];
  __m512 acc[kTile];
  for (auto& v : acc) v = _mm512_setzero_ps();
  asm volatile("" ::: "memory");  // the tile loads read memory the asm does not name
  // Group g's integers are scaled one step after they are stored: the vector loads would
  // otherwise wait for the tile store to reach the cache.
  ANETRAIN_AMX_GROUP(0, 2, 3, 0);
  for (int g = 0; g < b.G; g += 2) {
    if (g + 1 < b.G) ANETRAIN_AMX_GROUP(1, 4, 5, g + 1);
    _tile_stored(0, c0, 64);
    if (g > 0) scale_group(acc, c1, b, g - 1);
    if (g + 1 >= b.G) {
      scale_group(acc, c0, b, g);
      break;
    }
    if (g + 2 < b.G) ANETRAIN_AMX_GROUP(0, 2, 3, g + 2);
    _tile_stored(1, c1, 64);
    scale_group(acc, c0, b, g);
    if (g + 2 >= b.G) scale_group(acc, c1, b, g + 1);
  }
  for (int n = 0; n < kTile; ++n) _mm512_storeu_ps(out + n * kTile, acc[n]);
}
#undef ANETRAIN_AMX_GROUP

__attribute__((target("amx-tile"))) void release_tiles() { _tile_release(); }

}  // namespace

bool q8_amx_takes(const MatrixRef& W) {
  if (W.format != WeightFormat::q8_0 || !(W.group == 32 || (W.group > 0 && W.group % 64 == 0))) return false;
  return x86_level() >= X86Level::amx && amx_granted();
}

void q8_gemm_amx(const float* x, int N, const MatrixRef* W, float* const* y, int parts, AmxScratch& s) {
  const int cols = W[0].cols, group = W[0].group, G = cols / group;
  const int K = std::min(group, 64), steps = group / K;
  const int token_blocks = (N + kTile - 1) / kTile;
  const size_t width = size_t(cols), words = width / 4, groups = size_t(G);
  const int team = omp_get_max_threads();
  // Every buffer is sized here: nothing may throw inside the parallel region.
  if (s.tokens.size() < size_t(token_blocks) * kTile * width) s.tokens.resize(size_t(token_blocks) * kTile * width);
  if (s.token_scales.size() < size_t(token_blocks) * kTile * groups)
    s.token_scales.resize(size_t(token_blocks) * kTile * groups);
  if (s.tail_rows.size() < size_t(team) * kTile * width) s.tail_rows.resize(size_t(team) * kTile * width);
  if (s.tail_scales.size() < size_t(team) * kTile * groups) s.tail_scales.resize(size_t(team) * kTile * groups);
  if (s.row.size() < size_t(team) * width) s.row.resize(size_t(team) * width);
  if (s.row_scales.size() < size_t(team) * groups) s.row_scales.resize(size_t(team) * groups);
  // B's layout: per 16-token block, the 4-byte words of each row transposed, word k/4 of token m
  // at (k/4)·16 + m. The last block's tokens past N are zero, with scale 0.
  int32_t* const token_words = reinterpret_cast<int32_t*>(s.tokens.data());
  auto word_at = [&](int n, size_t k) -> int32_t& { return token_words[(size_t(n / kTile) * words + k) * kTile + size_t(n % kTile)]; };
  auto scale_at = [&](int n, size_t g) -> float& { return s.token_scales[(size_t(n / kTile) * groups + g) * kTile + size_t(n % kTile)]; };
  for (int n = N; n < token_blocks * kTile; ++n) {
    for (size_t k = 0; k < words; ++k) word_at(n, k) = 0;
    for (size_t g = 0; g < groups; ++g) scale_at(n, g) = 0.0f;
  }
  // Weight blocks of 16 rows numbered across the parts; a part's last block of fewer rows is
  // copied into a thread's zero-padded scratch, so that no tile load reads past the matrix.
  std::vector<int> block_start(size_t(parts) + 1, 0);
  for (int p = 0; p < parts; ++p) block_start[size_t(p) + 1] = block_start[size_t(p)] + (W[p].rows + kTile - 1) / kTile;
  const int blocks = block_start[size_t(parts)];

#pragma omp parallel num_threads(team)
  {
    const int me = omp_get_thread_num();
    // Each token's row quantized by the reference's function (contract/packed.h), then spread
    // into B's layout.
    int8_t* q = s.row.data() + size_t(me) * width;
    float* qs = s.row_scales.data() + size_t(me) * groups;
#pragma omp for schedule(static)
    for (int n = 0; n < N; ++n) {
      quantize_q8_0(x + size_t(n) * width, width, group, q, qs);
      for (size_t k = 0; k < words; ++k) std::memcpy(&word_at(n, k), q + 4 * k, 4);
      for (size_t g = 0; g < groups; ++g) scale_at(n, g) = qs[g];
    }
    configure_tiles(K);
    alignas(64) float out[kTile * kTile];
#pragma omp for schedule(guided)
    for (int blk = 0; blk < blocks; ++blk) {
      int p = 0;
      while (block_start[size_t(p) + 1] <= blk) ++p;
      const MatrixRef& M = W[p];
      const int r0 = (blk - block_start[size_t(p)]) * kTile, rows = std::min(kTile, M.rows - r0);
      Block b{static_cast<const int8_t*>(M.data) + size_t(r0) * width, M.scales + size_t(r0) * groups, width,
              nullptr, nullptr, G, K, steps};
      if (rows < kTile) {
        int8_t* tw = s.tail_rows.data() + size_t(me) * kTile * width;
        float* ts = s.tail_scales.data() + size_t(me) * kTile * groups;
        std::memcpy(tw, b.w, size_t(rows) * width);
        std::memcpy(ts, b.ws, sizeof(float) * size_t(rows) * groups);
        b.w = tw, b.ws = ts;
      }
      for (int tb = 0; tb < token_blocks; ++tb) {
        b.tokens = s.tokens.data() + size_t(tb) * kTile * width;
        b.xs = s.token_scales.data() + size_t(tb) * kTile * groups;
        block_product(b, out);
        const int tokens = std::min(kTile, N - tb * kTile);
        for (int m = 0; m < tokens; ++m) {
          float* yrow = y[p] + size_t(tb * kTile + m) * size_t(M.rows) + size_t(r0);
          for (int n = 0; n < rows; ++n) yrow[n] = out[n * kTile + m];
        }
      }
    }
    release_tiles();
  }
}

#else  // no tile products off x86-64

bool q8_amx_takes(const MatrixRef&) { return false; }
void q8_gemm_amx(const float*, int, const MatrixRef*, float* const*, int, AmxScratch&) {}

#endif

}  // namespace anetrain
