// The register-tiled VNNI products (packed_gemm_vnni.h). vpdpbusd multiplies unsigned by signed
// bytes, so the weights are offset to unsigned as they are loaded, wu = w + 128 (an xor; exact for
// any int8, −128 from a file included), and each token's sums start from −128·Σx, made once per
// token when it is quantized. A step's lanes 0–7 hold the first 32 bytes' sums and lanes 8–15
// the second's; each half lies in one group because groups are multiples of 32, so one vector of
// sw·sx per pair and step scales them.
// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*() (GCC bug 105593).
#if defined(__x86_64__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "backends/cpu/packed_gemm_vnni.h"
#include "core/cpu_features.h"

namespace anetrain {

#if defined(__x86_64__)
namespace {

constexpr int kRows = 4;     // weight rows per register tile
constexpr int kTokens = 4;   // tokens per register tile: 16 fp32 accumulators, the rest for operands
constexpr int kBlock = 16;   // weight rows a thread takes at a time (12 KB at width 768: stays in L1)
constexpr int kStep = 64;    // bytes per vpdpbusd

struct Tokens {
  const int8_t* x;           // kTokens rows of `stride` bytes, quantized
  const int32_t* start;      // per token, per step, 16 lanes of −128·(the lane's 4 values' sum)
  const float* lanes;        // per token, per step, 16 lane scales
  const int* half_group;     // per step, the groups of its two 32-byte halves
  size_t stride;
  int steps;
};

// out[r][t] = Σ over the row's steps of sw·sx·(exact integer dot) for R weight rows × 4 tokens.
template <int R>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void tile(const int8_t* w, size_t w_stride, const float* ws,
                                                                 int cols, int group, const Tokens& t,
                                                                 float (&out)[kRows][kTokens]) {
  const int G = cols / group;
  const __m512i c128 = _mm512_set1_epi8(char(0x80));
  __m512 acc[R][kTokens];
  for (auto& row : acc)
    for (auto& a : row) a = _mm512_setzero_ps();
  for (int c = 0; c < t.steps; ++c) {
    const int k = c * kStep;
    // A width of an odd number of 32-byte halves ends in half a step: the weights' missing half
    // reads as zero (as do the tokens' padding), adding nothing.
    const __mmask64 m = cols - k >= kStep ? ~__mmask64(0) : __mmask64(0xFFFFFFFFu);
    const int ga = t.half_group[2 * c], gb = t.half_group[2 * c + 1];
    __m512i wu[R];
    __m512 wsv[R];
    for (int r = 0; r < R; ++r) {
      wu[r] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, w + size_t(r) * w_stride + size_t(k)), c128);
      const float* s = ws + size_t(r) * size_t(G);
      wsv[r] = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(s[ga]), _mm512_set1_ps(s[gb]));
    }
    for (int j = 0; j < kTokens; ++j) {
      const __m512i xv = _mm512_loadu_si512(t.x + size_t(j) * t.stride + size_t(k));
      const size_t at = (size_t(j) * size_t(t.steps) + size_t(c)) * 16;
      const __m512i start = _mm512_loadu_si512(t.start + at);
      const __m512 xs = _mm512_loadu_ps(t.lanes + at);
      for (int r = 0; r < R; ++r) {
        const __m512i d = _mm512_dpbusd_epi32(start, wu[r], xv);
        acc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(wsv[r], xs), acc[r][j]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < kTokens; ++j) out[r][j] = _mm512_reduce_add_ps(acc[r][j]);
}

using TileFn = void (*)(const int8_t*, size_t, const float*, int, int, const Tokens&, float (&)[kRows][kTokens]);
constexpr TileFn kTileOfRows[kRows + 1] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>};

}  // namespace

bool q8_vnni_gemm_takes(const MatrixRef& W) {
  return W.format == WeightFormat::q8_0 && W.group > 0 && W.group % 32 == 0 &&
         x86_level() >= X86Level::avx512vnni;
}

void q8_gemm_vnni(const float* x, int N, const MatrixRef* W, float* const* y, int parts, VnniScratch& s) {
  const int cols = W[0].cols, group = W[0].group, G = cols / group;
  const int steps = (cols + kStep - 1) / kStep;
  const size_t stride = size_t(steps) * kStep, groups = size_t(G), width = size_t(cols);
  const int padded = (N + kTokens - 1) / kTokens * kTokens;
  const int team = omp_get_max_threads();
  // Every buffer is sized here: nothing may throw inside the parallel region.
  const size_t lanes_per_token = size_t(steps) * 16;
  if (s.tokens.size() < size_t(padded) * stride) s.tokens.resize(size_t(padded) * stride);
  if (s.starts.size() < size_t(padded) * lanes_per_token) s.starts.resize(size_t(padded) * lanes_per_token);
  if (s.lane_scales.size() < size_t(padded) * lanes_per_token) s.lane_scales.resize(size_t(padded) * lanes_per_token);
  if (s.row_scales.size() < size_t(team) * groups) s.row_scales.resize(size_t(team) * groups);
  // A table, not a division per step in the kernel (GCC then also keeps its sums in registers).
  s.half_group.resize(2 * size_t(steps));
  for (int h = 0; h < 2 * steps; ++h) s.half_group[size_t(h)] = std::min(h * 32 / group, G - 1);
  // Padding tokens and the bytes past the width: zero values, starts and scales add nothing.
  for (int n = N; n < padded; ++n) {
    std::memset(s.tokens.data() + size_t(n) * stride, 0, stride);
    std::fill_n(s.starts.data() + size_t(n) * lanes_per_token, lanes_per_token, 0);
    std::fill_n(s.lane_scales.data() + size_t(n) * lanes_per_token, lanes_per_token, 0.0f);
  }
  const StackedRows stacked(W, parts);
  const int blocks = (stacked.total + kBlock - 1) / kBlock;

#pragma omp parallel num_threads(team)
  {
    const int me = omp_get_thread_num();
    float* qs = s.row_scales.data() + size_t(me) * groups;
    // Each token quantized by the reference's function, then per 4-byte lane its starting sum and
    // its group's scale.
#pragma omp for schedule(static)
    for (int n = 0; n < N; ++n) {
      int8_t* xq = s.tokens.data() + size_t(n) * stride;
      quantize_q8_0(x + size_t(n) * width, width, group, xq, qs);
      std::memset(xq + width, 0, stride - width);
      int32_t* starts = s.starts.data() + size_t(n) * lanes_per_token;
      float* lanes = s.lane_scales.data() + size_t(n) * lanes_per_token;
      for (size_t l = 0; l < lanes_per_token; ++l) {
        const int8_t* v = xq + 4 * l;
        starts[l] = -128 * (int32_t(v[0]) + int32_t(v[1]) + int32_t(v[2]) + int32_t(v[3]));
        lanes[l] = 4 * l < width ? qs[4 * l / size_t(group)] : 0.0f;
      }
    }
    // Guided over blocks of 16 stacked rows, as the row kernels: big bands first, then pieces
    // that let a thread slowed by a busy neighbour be helped out.
#pragma omp for schedule(guided)
    for (int blk = 0; blk < blocks; ++blk)
      stacked.each_part(blk * kBlock, std::min(stacked.total, (blk + 1) * kBlock), [&](int p, int r0, int r1) {
        const MatrixRef& M = W[p];
        const int8_t* wq = static_cast<const int8_t*>(M.data);
        float out[kRows][kTokens];
        for (int n0 = 0; n0 < N; n0 += kTokens) {
          const Tokens t{s.tokens.data() + size_t(n0) * stride, s.starts.data() + size_t(n0) * lanes_per_token,
                         s.lane_scales.data() + size_t(n0) * lanes_per_token, s.half_group.data(), stride,
                         steps};
          const int tokens = std::min(kTokens, N - n0);
          for (int r = r0; r < r1; r += kRows) {
            const int rows = std::min(kRows, r1 - r);
            kTileOfRows[rows](wq + size_t(r) * width, width, M.scales + size_t(r) * groups, cols, group, t, out);
            for (int j = 0; j < tokens; ++j)
              for (int i = 0; i < rows; ++i) y[p][size_t(n0 + j) * size_t(M.rows) + size_t(r + i)] = out[i][j];
          }
        }
      });
  }
}

#else  // no VNNI products off x86-64

bool q8_vnni_gemm_takes(const MatrixRef&) { return false; }
void q8_gemm_vnni(const float*, int, const MatrixRef*, float* const*, int, VnniScratch&) {}

#endif

}  // namespace anetrain
