// Packed products of a prompt's chunk (many activation rows): on a CPU with AMX-INT8, Q8_0 goes
// to the tile products (packed_gemm_amx.cpp) — odd token counts (tiles of 16 padded), weight rows
// past a multiple of 16, fused parts, every group the tiles take, −128 from a file — held to the
// double reference exactly as tightly as the row kernels (the integer dots are exact; only the
// fp32 sum order differs). With AMX forced off (as on Zen 4) AVX512-VNNI register tiles take
// them, held the same way. On aarch64 SDOT or SMMLA register tiles take them at each level the
// CPU offers (and give decoding's bits). Elsewhere these run the row kernels, and pass the same
// way. bf16 chunks of kBf16GemmRows or more go to oneDNN's bf16 GEMM where the CPU multiplies
// bf16: the activations are rounded to bf16 (round to nearest even) and then multiplied exactly,
// so they are held to the reference on the rounded activations.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/packed_prefill.h"
#include "contract/packed.h"
#include "core/cpu_features.h"
#include "core/dtype.h"
#include "packed_test_util.h"

namespace anetrain {
namespace {

using Packed = test::PackedMatrix;

// 1e-5 of the output's scale: fp32 sums of a few thousand terms stay ~1e-6 of it, while a wrong
// group, scale, token or row is off by O(1).
void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  double scale = 1e-30;
  for (float v : want) scale = std::max(scale, double(std::fabs(v)));
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_LE(std::fabs(double(got[i]) - double(want[i])), 1e-5 * scale) << what << " at " << i;
}

void check_chunk(WeightFormat f, int N, int cols, std::vector<int> rows, int group, uint32_t seed) {
  const std::string what = weight_format_name(f) + " N=" + std::to_string(N) + " cols=" + std::to_string(cols) +
                           " group=" + std::to_string(group);
  std::vector<Packed> mats;
  mats.reserve(rows.size());
  for (size_t p = 0; p < rows.size(); ++p)
    mats.emplace_back(test::normal_values(size_t(rows[p]) * cols, seed + uint32_t(p)), rows[p], cols, f, group);
  const std::vector<float> x = test::normal_values(size_t(N) * cols, seed + 99, 2.0f);
  std::vector<MatrixRef> refs;
  std::vector<std::vector<float>> got, want;
  for (auto& m : mats) {
    refs.push_back(m.ref);
    got.emplace_back(size_t(N) * m.ref.rows, NAN);
    want.emplace_back(size_t(N) * m.ref.rows, NAN);
  }
  std::vector<float*> yg, yw;
  for (size_t p = 0; p < mats.size(); ++p) yg.push_back(got[p].data()), yw.push_back(want[p].data());
  CpuBackend cpu;
  cpu.linear_fwd_packed(x.data(), N, refs.data(), yg.data(), int(refs.size()));
  std::vector<float> x_ref = x;
  if (f == WeightFormat::bf16 && N >= kBf16GemmRows && default_precision() == Precision::bf16)
    for (float& v : x_ref) v = bf16_to_f32(f32_to_bf16(v));
  packed_linear_ref(x_ref.data(), N, refs.data(), yw.data(), int(refs.size()));
  for (size_t p = 0; p < mats.size(); ++p) expect_close(got[p], want[p], what + " part " + std::to_string(p));
}

TEST(PackedPrefill, Q8ChunksEqualReferenceAtOddAndRealShapes) {
  for (int N : {5, 16, 17, 40}) {
    check_chunk(WeightFormat::q8_0, N, 96, {37}, 32, 1);             // rows past 2 blocks, 3 groups
    check_chunk(WeightFormat::q8_0, N, 288, {288, 48, 40}, 32, 2);   // fused QKV, a part of 40 rows
    check_chunk(WeightFormat::q8_0, N, 192, {33}, 64, 3);            // groups of 64: one tile product
    check_chunk(WeightFormat::q8_0, N, 1024, {19}, 128, 4);          // groups of 128: two per group
    check_chunk(WeightFormat::q8_0, N, 288, {21}, 96, 5);            // a group the tiles do not take
  }
  // stories110m's shapes at a prompt chunk of 64 (GGUF Q8_0: groups of 32).
  check_chunk(WeightFormat::q8_0, 64, 768, {768, 768, 768}, 32, 6);
  check_chunk(WeightFormat::q8_0, 64, 768, {2048, 2048}, 32, 7);
  check_chunk(WeightFormat::q8_0, 64, 2048, {768}, 32, 8);
}

TEST(PackedPrefill, Bf16ChunksEqualReferenceOnTheirActivations) {
  for (int N : {kBf16GemmRows - 1, kBf16GemmRows, 17, 64}) {
    check_chunk(WeightFormat::bf16, N, 96, {37}, 0, 11);
    check_chunk(WeightFormat::bf16, N, 288, {288, 48, 40}, 0, 12);
    check_chunk(WeightFormat::bf16, N, 100, {9}, 0, 13);  // a width off every SIMD step
  }
  check_chunk(WeightFormat::bf16, 64, 768, {2048, 2048}, 0, 14);
}

// Every weight and activation at ±127 (and one −128, which only a file can hold): each group's
// integer dot is exact in int32, so the products are known in closed form.
void check_extremes() {
  const int cols = 128, rows = 18, N = 20, group = 32;
  std::vector<float> w(size_t(rows) * cols);
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < cols; ++i) w[size_t(r) * cols + i] = (r % 2 ? -3.0f : 3.0f);
  Packed m(w, rows, cols, WeightFormat::q8_0, group);
  m.q[size_t(17 * cols)] = -128;  // row 17 (the block of 2 rows past 16), first value
  std::vector<float> x(size_t(N) * cols, 1.0f), y(size_t(N) * rows, NAN);
  float* yy[] = {y.data()};
  CpuBackend cpu;
  cpu.linear_fwd_packed(x.data(), N, &m.ref, yy, 1);
  const float unit = (3.0f / 127.0f) * (1.0f / 127.0f);
  for (int n = 0; n < N; ++n) {
    SCOPED_TRACE("token " + std::to_string(n));
    EXPECT_FLOAT_EQ(y[size_t(n) * rows], float(4 * 32 * 127 * 127) * unit);
    EXPECT_FLOAT_EQ(y[size_t(n) * rows + 1], -float(4 * 32 * 127 * 127) * unit);
    // Row 17: −127 everywhere but one −128: group 0's dot is −(31·127 + 128)·127.
    const float g0 = -float((31 * 127 + 128) * 127) * unit, rest = -float(3 * 32 * 127 * 127) * unit;
    EXPECT_FLOAT_EQ(y[size_t(n) * rows + 17], g0 + rest);
  }
}

TEST(PackedPrefill, Q8ChunkMultipliesExtremesExactly) { check_extremes(); }

// For one test: the x86 level at most `l`, then back to what the environment allows.
struct X86LevelScope {
  explicit X86LevelScope(X86Level l) { limit_x86_level(l); }
  ~X86LevelScope() { limit_x86_level(X86Level::amx); }
};

// What a Zen 4 or Ice Lake CPU runs: AMX forced off, AVX512-VNNI register tiles of 16 transposed
// weight rows × 8 tokens — token counts past and short of a tile (every tile width 1–8 is taken
// by some N), rows past and short of a block of 16, a block of 16 stacked rows spanning parts,
// widths ending in half of a 16-word transposition (odd multiples of 32) or shorter than one,
// groups of 32 (their unrolled kernel) and every other multiple of 32 (the general one).
TEST(PackedPrefill, VnniTilesWithoutAmxEqualReference) {
  if (x86_level() < X86Level::avx512vnni) GTEST_SKIP() << "AVX512-VNNI not offered (CPU or ANETRAIN_CPU_LEVEL)";
  const X86LevelScope vnni(X86Level::avx512vnni);
  std::vector<int8_t> q(1024);
  std::vector<float> sc(32, 1.0f);
  for (int group : {32, 64, 96, 128}) {
    const MatrixRef W{WeightFormat::q8_0, q.data(), sc.data(), 1, 384, group};
    ASSERT_EQ(q8_prefill_path(W, 5), Q8Prefill::vnni_tiles) << "group " << group;
    ASSERT_EQ(q8_prefill_path(W, 4), Q8Prefill::rows) << "group " << group;
  }
  for (int N : {5, 6, 7, 8, 11, 17, 18, 40}) {
    check_chunk(WeightFormat::q8_0, N, 32, {16, 3}, 32, 20);         // one group, half a transposition
    check_chunk(WeightFormat::q8_0, N, 96, {37}, 32, 21);           // 1.5 transpositions per row
    check_chunk(WeightFormat::q8_0, N, 288, {288, 48, 41}, 32, 22);  // fused, 4.5 transpositions, rows 41
    check_chunk(WeightFormat::q8_0, N, 192, {33}, 64, 23);
    check_chunk(WeightFormat::q8_0, N, 288, {21}, 96, 24);           // a group across two transpositions
    check_chunk(WeightFormat::q8_0, N, 1024, {19, 2, 3}, 128, 25);   // blocks of 16 spanning 3 parts
  }
  check_chunk(WeightFormat::q8_0, 64, 768, {768, 768, 768}, 32, 26);  // stories110m's QKV
  check_chunk(WeightFormat::q8_0, 33, 2048, {768}, 32, 27);
  check_extremes();
}

TEST(PackedPrefill, AvxWithoutVnniTakesTheRowKernels) {
  if (x86_level() < X86Level::avx512) GTEST_SKIP() << "AVX-512 not offered (CPU or ANETRAIN_CPU_LEVEL)";
  const X86LevelScope avx512(X86Level::avx512);
  std::vector<int8_t> q(384);
  std::vector<float> sc(12, 1.0f);
  const MatrixRef W{WeightFormat::q8_0, q.data(), sc.data(), 1, 384, 32};
  EXPECT_EQ(q8_prefill_path(W, 40), Q8Prefill::rows);
  for (int N : {5, 17}) check_chunk(WeightFormat::q8_0, N, 288, {288, 48, 41}, 32, 28);
}

// For one test: the aarch64 level at most `l`, then back to what the environment allows.
struct ArmLevelScope {
  explicit ArmLevelScope(ArmLevel l) { limit_arm_level(l); }
  ~ArmLevelScope() { limit_arm_level(ArmLevel::bf16); }
};

// A chunk's products give the same bits as its tokens decoded one at a time (the row kernels):
// both take each group's exact integer sum, scale it by sw·sx and add in group order.
void check_same_bits_as_decoding(int N, int cols, int rows, int group, uint32_t seed) {
  Packed m(test::normal_values(size_t(rows) * cols, seed), rows, cols, WeightFormat::q8_0, group);
  const std::vector<float> x = test::normal_values(size_t(N) * cols, seed + 1, 2.0f);
  std::vector<float> chunk(size_t(N) * rows, NAN), one(size_t(rows), NAN);
  float* yc[] = {chunk.data()};
  float* y1[] = {one.data()};
  CpuBackend cpu;
  cpu.linear_fwd_packed(x.data(), N, &m.ref, yc, 1);
  for (int n = 0; n < N; ++n) {
    cpu.linear_fwd_packed(x.data() + size_t(n) * cols, 1, &m.ref, y1, 1);
    for (int r = 0; r < rows; ++r)
      ASSERT_EQ(chunk[size_t(n) * rows + r], one[size_t(r)]) << "token " << n << " row " << r << " group " << group;
  }
}

// aarch64 at every level the CPU offers (under qemu: -cpu max has I8MM, cortex-a72 plain NEON):
// plain NEON keeps the row kernels; DotProd takes SDOT tiles of 4 rows × 4 tokens; I8MM (which
// arm_features reports at the bf16 level) SMMLA tiles — for groups that are multiples of 16, at
// token counts past and short of a tile (every tile width 1–4), rows past and short of one,
// fused parts, groups of 16, 32, 48, 64 and 128, and ±127/−128.
TEST(PackedPrefill, ArmTilesEqualReferenceAndDecodingBits) {
  if (arm_level() == ArmLevel::none) GTEST_SKIP() << "not aarch64";
  std::vector<int8_t> q(1536);
  std::vector<float> sc(96, 1.0f);
  for (ArmLevel level : {ArmLevel::neon, ArmLevel::dotprod, ArmLevel::bf16}) {
    if (level > arm_level()) continue;
    SCOPED_TRACE("level " + arm_level_name(level));
    const ArmLevelScope scope(level);
    const Q8Prefill want = level == ArmLevel::neon ? Q8Prefill::rows
                           : arm_features().i8mm   ? Q8Prefill::smmla_tiles
                                                   : Q8Prefill::sdot_tiles;
    for (int group : {16, 32, 48, 64, 128}) {
      const MatrixRef W{WeightFormat::q8_0, q.data(), sc.data(), 1, 768, group};
      ASSERT_EQ(q8_prefill_path(W, 5), want) << "group " << group;
      ASSERT_EQ(q8_prefill_path(W, 4), Q8Prefill::rows) << "group " << group;
    }
    const MatrixRef g40{WeightFormat::q8_0, q.data(), sc.data(), 1, 320, 40};
    EXPECT_EQ(q8_prefill_path(g40, 64), Q8Prefill::rows);  // no NEON kernel takes groups of 40
    for (int N : {5, 6, 7, 9, 11, 17}) {
      check_chunk(WeightFormat::q8_0, N, 32, {16, 3}, 32, 30);          // one group, rows short of a tile
      check_chunk(WeightFormat::q8_0, N, 288, {288, 48, 41}, 32, 31);   // fused QKV, blocks across parts
      check_chunk(WeightFormat::q8_0, N, 80, {7}, 16, 32);
      check_chunk(WeightFormat::q8_0, N, 144, {21}, 48, 33);
      check_chunk(WeightFormat::q8_0, N, 192, {33}, 64, 34);
      check_chunk(WeightFormat::q8_0, N, 1024, {19, 2, 3}, 128, 35);
    }
    check_chunk(WeightFormat::q8_0, 40, 768, {768, 768, 768}, 32, 36);  // stories110m's QKV
    check_extremes();
    for (int group : {16, 32, 48, 64, 128}) check_same_bits_as_decoding(11, 384, 23, group, 37);
  }
}

TEST(PackedPrefill, TileProductsTakeGroupsOf32AndMultiplesOf64Only) {
  std::vector<int8_t> q(192);
  std::vector<float> sc(6, 1.0f);
  for (int group : {48, 96, 16}) {
    const MatrixRef W{WeightFormat::q8_0, q.data(), sc.data(), 1, 192, group};
    EXPECT_FALSE(q8_amx_takes(W)) << "group " << group;
  }
  const MatrixRef f32{WeightFormat::f32, sc.data(), nullptr, 1, 6, 0};
  EXPECT_FALSE(q8_amx_takes(f32));
}

}  // namespace
}  // namespace anetrain
