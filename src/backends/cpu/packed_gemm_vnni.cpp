// The register-tiled VNNI products (packed_prefill.h). vpdpbusd multiplies unsigned by signed
// bytes. The tokens stay signed, each step's 4 bytes a broadcast (a load, off the vector ports
// the products need), and the weights are offset to unsigned as a block is transposed,
// wu = w + 128 (an xor; exact for any int8, −128 from a file included); each token's group sums
// start from −128·Σx, made once per token when it is quantized.
// A transposed block: for each 4-byte column k of the width, one 64-byte vector holding bytes
// 4k..4k+3 of rows 0..15 in that order (rows past the matrix are 0x80 with scale 0); group g's
// vectors are g·group/4 onwards, so a group is one contiguous run of group/4 vectors.
#include "backends/cpu/packed_simd.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "backends/cpu/packed_prefill.h"
#include "core/cpu_features.h"

namespace anetrain {

#if defined(__x86_64__)
namespace {

constexpr int kRows = 16;    // weight rows per block: the 16 lanes of a vector
constexpr int kTokens = 8;   // tokens per register tile: 8 int32 sums and 8 fp32 sums in registers
constexpr int kWords = 16;   // 4-byte columns transposed at a time (one vector from each row)

struct Block {
  const int8_t* w;           // transposed: (cols/4) vectors of 64 bytes
  const float* ws;           // per group, the 16 rows' scales
  int G, words;              // groups, 4-byte columns per group
};

// Lines of the next block brought towards the cache while this one is multiplied, a few per
// group: the transposition reads 16 rows at once, each only a few lines long, which the hardware
// prefetchers do not foresee, and would otherwise wait on memory for each of them.
struct Prefetch {
  const char* at = nullptr;
  int lines = 0, per_group = 0;
};

struct TokenRows {
  const int8_t* x;           // token rows of `stride` bytes, quantized
  const float* xs;           // per token, G group scales
  const int32_t* offsets;    // per token, G times −128·(the group's sum)
  size_t stride;
};

// Transposes `rows` (≤ 16) rows of `width` bytes (a multiple of 32) into Block's layout, offset
// to unsigned, and gathers their group scales (0 past `rows`).
__attribute__((target("avx512f,avx512bw"))) void transpose_block(const int8_t* w, size_t width, const float* ws,
                                                                 int G, int rows, int8_t* out, float* out_scales) {
  const int words = int(width / 4);
  const __m512i c128 = _mm512_set1_epi8(char(0x80));
  for (int k0 = 0; k0 < words; k0 += kWords) {
    const int n = std::min(kWords, words - k0);
    const __mmask64 m = n == kWords ? ~__mmask64(0) : (__mmask64(1) << (4 * n)) - 1;
    __m512i r[kRows], a[kRows];
    for (int i = 0; i < kRows; ++i)
      r[i] = i < rows ? _mm512_maskz_loadu_epi8(m, w + size_t(i) * width + 4 * size_t(k0)) : _mm512_setzero_si512();
    // Within each 128-bit lane: pairs of rows interleaved by dword, then quads by qword, so that
    // a[4i + c] holds, in lane L, column 4L + c of rows 4i..4i+3.
    for (int i = 0; i < kRows; i += 2) {
      a[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
      a[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < kRows; i += 4) {
      r[i] = _mm512_unpacklo_epi64(a[i], a[i + 2]);
      r[i + 1] = _mm512_unpackhi_epi64(a[i], a[i + 2]);
      r[i + 2] = _mm512_unpacklo_epi64(a[i + 1], a[i + 3]);
      r[i + 3] = _mm512_unpackhi_epi64(a[i + 1], a[i + 3]);
    }
    // Then lane L of the four quads gathered: column 4L + c is [r[c].L, r[4+c].L, r[8+c].L, r[12+c].L].
    for (int c = 0; c < 4; ++c) {
      const __m512i e0 = _mm512_shuffle_i32x4(r[c], r[4 + c], _MM_SHUFFLE(2, 0, 2, 0));
      const __m512i e1 = _mm512_shuffle_i32x4(r[c], r[4 + c], _MM_SHUFFLE(3, 1, 3, 1));
      const __m512i e2 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], _MM_SHUFFLE(2, 0, 2, 0));
      const __m512i e3 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], _MM_SHUFFLE(3, 1, 3, 1));
      const __m512i col[4] = {_mm512_shuffle_i32x4(e0, e2, _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_i32x4(e1, e3, _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_i32x4(e0, e2, _MM_SHUFFLE(3, 1, 3, 1)),
                              _mm512_shuffle_i32x4(e1, e3, _MM_SHUFFLE(3, 1, 3, 1))};
      for (int L = 0; L < 4; ++L)
        if (4 * L + c < n) _mm512_storeu_si512(out + size_t(k0 + 4 * L + c) * 64, _mm512_xor_si512(col[L], c128));
    }
  }
  for (int g = 0; g < G; ++g)
    for (int i = 0; i < kRows; ++i)
      out_scales[size_t(g) * kRows + size_t(i)] = i < rows ? ws[size_t(i) * size_t(G) + size_t(g)] : 0.0f;
}

// y[j·y_stride + i] = Σ_g sw[i,g]·sx[j,g]·(exact integer dot over group g) for the block's rows i
// (those in `rows`) and T tokens j. Words: 4-byte columns per group when known at compile time
// (8 for groups of 32: the loop unrolled, each sum kept in its register), else 0 for b.words.
template <int T, int Words>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void tile(const Block& b, const TokenRows& t, float* y,
                                                                 size_t y_stride, __mmask16 rows, Prefetch pf) {
  const int words = Words > 0 ? Words : b.words;
  __m512 acc[T];
  for (auto& a : acc) a = _mm512_setzero_ps();
  for (int g = 0; g < b.G; ++g) {
    for (int l = g * pf.per_group; l < std::min(pf.lines, (g + 1) * pf.per_group); ++l)
      _mm_prefetch(pf.at + size_t(l) * 64, _MM_HINT_T1);
    const int8_t* wg = b.w + size_t(g) * size_t(words) * 64;
    const int8_t* xg = t.x + size_t(g) * size_t(words) * 4;
    __m512i sum[T];
    for (int j = 0; j < T; ++j) sum[j] = _mm512_set1_epi32(t.offsets[size_t(j) * size_t(b.G) + size_t(g)]);
    for (int k = 0; k < words; ++k) {
      const __m512i wv = _mm512_loadu_si512(wg + size_t(k) * 64);
      for (int j = 0; j < T; ++j) {
        int32_t word;
        std::memcpy(&word, xg + size_t(j) * t.stride + size_t(4 * k), 4);
        sum[j] = _mm512_dpbusd_epi32(sum[j], wv, _mm512_set1_epi32(word));
      }
    }
    const __m512 sw = _mm512_loadu_ps(b.ws + size_t(g) * kRows);
    for (int j = 0; j < T; ++j) {
      const __m512 s = _mm512_mul_ps(sw, _mm512_set1_ps(t.xs[size_t(j) * size_t(b.G) + size_t(g)]));
      acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[j]), s, acc[j]);
    }
  }
  for (int j = 0; j < T; ++j) _mm512_mask_storeu_ps(y + size_t(j) * y_stride, rows, acc[j]);
}

using TileFn = void (*)(const Block&, const TokenRows&, float*, size_t, __mmask16, Prefetch);
template <int Words>
constexpr TileFn kTileOfTokens[kTokens + 1] = {nullptr,         tile<1, Words>, tile<2, Words>,
                                               tile<3, Words>,  tile<4, Words>, tile<5, Words>,
                                               tile<6, Words>,  tile<7, Words>, tile<8, Words>};

}  // namespace

bool q8_vnni_gemm_takes(const MatrixRef& W) {
  return W.format == WeightFormat::q8_0 && W.group > 0 && W.group % 32 == 0 &&
         x86_level() >= X86Level::avx512vnni;
}

void q8_gemm_vnni(const float* x, int N, const MatrixRef* W, float* const* y, int parts, VnniScratch& s) {
  const int cols = W[0].cols, group = W[0].group, G = cols / group;
  const size_t width = size_t(cols), groups = size_t(G);
  const int team = omp_get_max_threads();
  // Every buffer is sized here: nothing may throw inside the parallel region.
  if (s.tokens.size() < size_t(N) * width) s.tokens.resize(size_t(N) * width);
  if (s.token_scales.size() < size_t(N) * groups) s.token_scales.resize(size_t(N) * groups);
  if (s.token_offsets.size() < size_t(N) * groups) s.token_offsets.resize(size_t(N) * groups);
  if (s.blocks.size() < size_t(team) * kRows * width) s.blocks.resize(size_t(team) * kRows * width);
  if (s.block_scales.size() < size_t(team) * kRows * groups) s.block_scales.resize(size_t(team) * kRows * groups);
  const StackedRows stacked(W, parts);
  const int blocks = (stacked.total + kRows - 1) / kRows;
  const TileFn* tiles = group == 32 ? kTileOfTokens<8> : kTileOfTokens<0>;

#pragma omp parallel num_threads(team)
  {
    const int me = omp_get_thread_num();
    // Each token quantized by the reference's function, then per group −128·Σx.
#pragma omp for schedule(static)
    for (int n = 0; n < N; ++n) {
      int8_t* q = s.tokens.data() + size_t(n) * width;
      quantize_q8_0(x + size_t(n) * width, width, group, q, s.token_scales.data() + size_t(n) * groups);
      for (size_t g = 0; g < groups; ++g) {
        int32_t sum = 0;
        for (int i = 0; i < group; ++i) sum += q[g * size_t(group) + size_t(i)];
        s.token_offsets[size_t(n) * groups + g] = -128 * sum;
      }
    }
    int8_t* bw = s.blocks.data() + size_t(me) * kRows * width;
    float* bs = s.block_scales.data() + size_t(me) * kRows * groups;
    // Guided over blocks of 16 stacked rows, as the row kernels: big bands first, then pieces
    // that let a thread slowed by a busy neighbour be helped out. A block that spans two parts
    // is taken as two pieces, each padded to 16 rows. Each block is transposed once and then
    // multiplied by every token, 8 at a time.
#pragma omp for schedule(guided)
    for (int blk = 0; blk < blocks; ++blk)
      stacked.each_part(blk * kRows, std::min(stacked.total, (blk + 1) * kRows), [&](int p, int r0, int r1) {
        const MatrixRef& M = W[p];
        const int rows = r1 - r0;
        transpose_block(static_cast<const int8_t*>(M.data) + size_t(r0) * width, width,
                        M.scales + size_t(r0) * groups, G, rows, bw, bs);
        const Block b{bw, bs, G, group / 4};
        const __mmask16 mask = __mmask16((1u << rows) - 1);
        const size_t y_stride = size_t(M.rows);
        // The next block: the next 16 rows of this part, which guided scheduling mostly gives
        // this thread next. Its lines are spread over the token tiles and their groups.
        const int next_rows = std::max(0, std::min(kRows, M.rows - r1));
        const int lines = int(size_t(next_rows) * width / 64), token_tiles = (N + kTokens - 1) / kTokens;
        const int per_tile = (lines + token_tiles - 1) / token_tiles;
        const char* next = static_cast<const char*>(M.data) + size_t(r1) * width;
        for (int n0 = 0; n0 < N; n0 += kTokens) {
          const TokenRows t{s.tokens.data() + size_t(n0) * width, s.token_scales.data() + size_t(n0) * groups,
                            s.token_offsets.data() + size_t(n0) * groups, width};
          const int first = n0 / kTokens * per_tile, count = std::max(0, std::min(per_tile, lines - first));
          const Prefetch pf{next + size_t(first) * 64, count, (count + G - 1) / G};
          tiles[std::min(kTokens, N - n0)](b, t, y[p] + size_t(n0) * y_stride + size_t(r0), y_stride, mask, pf);
        }
      });
  }
}

#else  // no VNNI products off x86-64

bool q8_vnni_gemm_takes(const MatrixRef&) { return false; }
void q8_gemm_vnni(const float*, int, const MatrixRef*, float* const*, int, VnniScratch&) {}

#endif

}  // namespace anetrain
