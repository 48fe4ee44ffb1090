// Packed inference products (kernels/packed.h): the cpu kernels against the double-precision
// reference for fp32, bf16 and Q8_0 at odd and real shapes, fused parts, and adversarial Q8_0
// inputs (all ±127, zeros, one outlier per group, −128 in a file); and the quantizers' rules.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/dtype.h"
#include "core/error.h"
#include "contract/packed.h"
#include "packed_test_util.h"

namespace anetrain {
namespace {

using Packed = test::PackedMatrix;

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  return test::normal_values(n, seed, scale);
}

// Relative to the output's scale (max |ref|): the kernels differ from the double reference only
// in fp32 summation order (Q8_0: the integer dots are exact, the per-group float terms are summed
// in another order), so 1e-5 of the scale holds with room; a wrong group or sign is off by O(1).
void expect_close(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  double scale = 1e-30;
  for (float v : want) scale = std::max(scale, double(std::fabs(v)));
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_LE(std::fabs(double(got[i]) - double(want[i])), 1e-5 * scale) << what << " at " << i;
}

void check_against_ref(WeightFormat f, int N, int cols, std::vector<int> rows, int group, uint32_t seed) {
  std::vector<Packed> mats;
  mats.reserve(rows.size());
  for (size_t p = 0; p < rows.size(); ++p)
    mats.emplace_back(random_values(size_t(rows[p]) * cols, seed + uint32_t(p)), rows[p], cols, f, group);
  const std::vector<float> x = random_values(size_t(N) * cols, seed + 99, 2.0f);
  std::vector<MatrixRef> refs;
  std::vector<std::vector<float>> got, want;
  std::vector<float*> yg, yw;
  for (auto& m : mats) {
    refs.push_back(m.ref);
    got.emplace_back(size_t(N) * m.ref.rows, NAN);
    want.emplace_back(size_t(N) * m.ref.rows, NAN);
  }
  for (size_t p = 0; p < mats.size(); ++p) yg.push_back(got[p].data()), yw.push_back(want[p].data());
  CpuBackend cpu;
  cpu.linear_fwd_packed(x.data(), N, refs.data(), yg.data(), int(refs.size()));
  packed_linear_ref(x.data(), N, refs.data(), yw.data(), int(refs.size()));
  for (size_t p = 0; p < mats.size(); ++p) expect_close(got[p], want[p], weight_format_name(f).c_str());
}

TEST(PackedKernels, CpuEqualsReferenceAtOddAndRealShapes) {
  for (WeightFormat f : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::q8_0})
    for (int N : {1, 3, 7}) {
      SCOPED_TRACE(weight_format_name(f) + " N=" + std::to_string(N));
      check_against_ref(f, N, 96, {37}, 32, 1);                 // odd rows, a 32-group tail past 64
      check_against_ref(f, N, 288, {288, 48, 48}, 32, 2);       // stories15m-like fused QKV, GQA
      check_against_ref(f, N, 768, {2048, 2048}, 64, 3);        // stories110m gate–up
      check_against_ref(f, N, 1024, {3072 / 4}, 128, 4);        // qwen3 width, group 128
      check_against_ref(f, N, 288, {40}, 96, 5);                // a group no SIMD kernel takes: scalar
      check_against_ref(f, N, 192, {33}, 64, 6);                // an odd number of 64-groups
      check_against_ref(f, N, 1280, {19}, 64, 8);               // 20 groups: a partial second 16 of scales
      if (f != WeightFormat::q8_0) check_against_ref(f, N, 100, {9}, 0, 7);  // widths off the SIMD steps
    }
}

TEST(PackedKernels, Q8AdversarialInputs) {
  const int cols = 128, rows = 5;
  // Row 0 all +max, row 1 all −max (→ ±127), row 2 zeros (scale 0), rows 3–4 one outlier per group.
  std::vector<float> w(size_t(rows) * cols, 0.0f);
  for (int i = 0; i < cols; ++i) w[size_t(i)] = 3.0f, w[size_t(cols + i)] = -3.0f;
  for (int r = 3; r < rows; ++r)
    for (int i = 0; i < cols; ++i) w[size_t(r) * cols + i] = (i % 32 == 5) ? 1000.0f : 0.001f * float(i % 7);
  for (int group : {32, 64}) {
    Packed m(w, rows, cols, WeightFormat::q8_0, group);
    EXPECT_EQ(m.q[0], 127);
    EXPECT_EQ(m.q[size_t(cols)], -127);
    EXPECT_EQ(m.scales[size_t(2 * cols / group)], 0.0f);
    // −128 cannot come from our quantizer but can from a file: it must be multiplied exactly.
    m.q[size_t(3 * cols + 1)] = -128;
    for (const std::vector<float>& x : {std::vector<float>(cols, 1.0f), std::vector<float>(cols, -2.5f),
                                        std::vector<float>(cols, 0.0f), random_values(cols, 7)}) {
      std::vector<float> got(rows), want(rows);
      float* yg[] = {got.data()};
      float* yw[] = {want.data()};
      CpuBackend cpu;
      cpu.linear_fwd_packed(x.data(), 1, &m.ref, yg, 1);
      packed_linear_ref(x.data(), 1, &m.ref, yw, 1);
      expect_close(got, want, "q8_0 adversarial");
    }
  }
  // All ±127 against all ±127 activations: each group's dot is 32·127² exactly.
  std::vector<float> ones(cols, 1.0f);
  Packed m(w, rows, cols, WeightFormat::q8_0, 32);
  std::vector<float> y(rows);
  float* yy[] = {y.data()};
  CpuBackend cpu;
  cpu.linear_fwd_packed(ones.data(), 1, &m.ref, yy, 1);
  EXPECT_FLOAT_EQ(y[0], float(4 * 32 * 127 * 127) * (3.0f / 127.0f) * (1.0f / 127.0f));
  EXPECT_FLOAT_EQ(y[1], -y[0]);
  EXPECT_EQ(y[2], 0.0f);
}

TEST(PackedKernels, Q8QuantizerSurvivesDenormalsAndNonFinite) {
  // A group whose largest value is a denormal: amax / 127 rounds coarsely, so x / scale can pass
  // 127; the values must clamp, not wrap (a float → int8 conversion out of range is undefined).
  std::vector<float> x(32, 0.0f);
  x[0] = 143.0f * std::ldexp(1.0f, -149);
  x[1] = -x[0];
  std::vector<int8_t> q(32);
  float s;
  quantize_q8_0(x.data(), 32, 32, q.data(), &s);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], -127);
  // NaN or Inf: the scale carries it (every product with this group is NaN), the values are 0.
  x[2] = NAN;
  quantize_q8_0(x.data(), 32, 32, q.data(), &s);
  EXPECT_TRUE(std::isnan(s));
  for (int8_t v : q) EXPECT_EQ(v, 0);
  x[2] = INFINITY;
  quantize_q8_0(x.data(), 32, 32, q.data(), &s);
  EXPECT_FALSE(std::isfinite(s));
  float d;
  quantize_q8_0_f16_scales(x.data(), 32, q.data(), &d);
  EXPECT_FALSE(std::isfinite(d));
}

TEST(PackedKernels, RefusesMismatchedParts) {
  std::vector<int8_t> q(64, 1);
  std::vector<float> sc(2, 1.0f), x(64, 1.0f), y(1);
  float* yy[] = {y.data()};
  CpuBackend cpu;
  const MatrixRef bad_group{WeightFormat::q8_0, q.data(), sc.data(), 1, 64, 0};
  EXPECT_THROW(cpu.linear_fwd_packed(x.data(), 1, &bad_group, yy, 1), Error);
  EXPECT_THROW(cpu.linear_fwd_packed(x.data(), 1, &bad_group, yy, 0), Error);
  const MatrixRef parts[2] = {{WeightFormat::q8_0, q.data(), sc.data(), 1, 64, 32},
                              {WeightFormat::f32, x.data(), nullptr, 1, 64, 0}};
  float* y2[] = {y.data(), y.data()};
  EXPECT_THROW(cpu.linear_fwd_packed(x.data(), 1, parts, y2, 2), Error);
}

TEST(PackedKernels, Q8QuantizerRules) {
  // runq.c's rule: scale = max|x| / 127, q = round half away from zero of x / scale.
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;   // scale 1
  x[1] = 2.5f;     // → 3 (half away from zero; round-half-even would give 2)
  x[2] = -2.5f;    // → −3
  x[3] = 0.49f;    // → 0
  std::vector<int8_t> q(32);
  float s;
  quantize_q8_0(x.data(), 32, 32, q.data(), &s);
  EXPECT_EQ(s, 1.0f);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], 3);
  EXPECT_EQ(q[2], -3);
  EXPECT_EQ(q[3], 0);
  // GGUF's: the scale is f16 and the values are quantized against it, clamped to ±127.
  std::vector<float> y = random_values(64, 11);
  std::vector<int8_t> q2(64);
  float d[2];
  quantize_q8_0_f16_scales(y.data(), 64, q2.data(), d);
  for (int g = 0; g < 2; ++g) {
    EXPECT_EQ(d[g], f16_to_f32(f32_to_f16(d[g])));
    for (int i = 0; i < 32; ++i) {
      EXPECT_LE(std::abs(int(q2[size_t(g * 32 + i)])), 127);
      EXPECT_LE(std::fabs(float(q2[size_t(g * 32 + i)]) * d[g] - y[size_t(g * 32 + i)]), 0.5f * d[g] * 1.0001f);
    }
  }
}

}  // namespace
}  // namespace anetrain
