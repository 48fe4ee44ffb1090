// The cpu backend's bf16 products (backends/cpu/gemm.h) on every CPU: where the library multiplies
// bf16 (oneDNN from AVX-512 up) and where it has no bf16 product (oneDNN on AVX2 alone — Zen 2/3,
// Intel before Ice Lake — or a BLAS-only build), when the operands are widened to fp32 first.
// CTest runs this file twice: as it is, and with ONEDNN_MAX_CPU_ISA=AVX2 (gemm_bf16_avx2), so an
// AVX-512 machine checks the widening path too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "backends/cpu/gemm.h"
#include "core/dtype.h"

namespace anetrain {
namespace {

struct Operands {
  int M, N, K;
  std::vector<uint16_t> a, b;  // a (M,K), b stored (N,K): a linear layer's x·Wᵀ
};

Operands random_operands(int M, int N, int K, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  Operands o{M, N, K, std::vector<uint16_t>(size_t(M) * K), std::vector<uint16_t>(size_t(N) * K)};
  for (auto& v : o.a) v = f32_to_bf16(d(rng));
  for (auto& v : o.b) v = f32_to_bf16(d(rng));
  return o;
}

// Odd sizes, a real model's (stories110m's q projection over T=64), and K long enough that the
// order of the fp32 sums shows.
const int kShapes[][3] = {{1, 1, 1}, {7, 13, 29}, {33, 65, 127}, {64, 768, 768}};

// Each product against float64 sums of the same bf16 values: within K·2⁻²⁴ of Σ|a||b| (fp32
// accumulation of exact products, in any order), whichever path this CPU takes.
TEST(GemmBf16, EqualsFloat64SumsOfTheBf16Values) {
  for (const auto& s : kShapes) {
    const Operands o = random_operands(s[0], s[1], s[2], 7);
    std::vector<float> c(size_t(o.M) * o.N, -1.0f);
    Gemm g;
    g.bf16(o.a.data(), false, o.b.data(), true, c.data(), o.M, o.N, o.K, false);
    for (int m = 0; m < o.M; ++m)
      for (int n = 0; n < o.N; ++n) {
        double sum = 0, mag = 0;
        for (int k = 0; k < o.K; ++k) {
          const double p = double(bf16_to_f32(o.a[size_t(m) * o.K + k])) * bf16_to_f32(o.b[size_t(n) * o.K + k]);
          sum += p, mag += std::fabs(p);
        }
        ASSERT_NEAR(c[size_t(m) * o.N + n], sum, o.K * std::ldexp(1.0, -24) * mag + 1e-30)
            << "M N K " << o.M << " " << o.N << " " << o.K << " at " << m << "," << n << " (" << gemm_isa() << ")";
      }
  }
}

// Accumulating adds the product to what C holds, on either path.
TEST(GemmBf16, AccumulateAddsToC) {
  const Operands o = random_operands(9, 17, 33, 11);
  std::vector<float> once(size_t(o.M) * o.N), twice(size_t(o.M) * o.N);
  Gemm g;
  g.bf16(o.a.data(), false, o.b.data(), true, once.data(), o.M, o.N, o.K, false);
  g.bf16(o.a.data(), false, o.b.data(), true, twice.data(), o.M, o.N, o.K, false);
  g.bf16(o.a.data(), false, o.b.data(), true, twice.data(), o.M, o.N, o.K, true);
  for (size_t i = 0; i < once.size(); ++i) EXPECT_NEAR(twice[i], 2 * once[i], 4e-7 * std::fabs(once[i]) + 1e-6);
}

// Where oneDNN runs below AVX-512 (this CPU, or ONEDNN_MAX_CPU_ISA), the bf16 product is the fp32
// product of the widened values, bit for bit: what the fused and composed stages' bit-equality
// tests then rely on.
TEST(GemmBf16, WithoutALibraryBf16ProductItIsTheFp32ProductOfTheWidenedValues) {
  const std::string isa = gemm_isa();
  if (isa.rfind("avx512", 0) == 0) GTEST_SKIP() << "oneDNN multiplies bf16 here (" << isa << "); gemm_bf16_avx2 runs this";
  for (const auto& s : kShapes) {
    const Operands o = random_operands(s[0], s[1], s[2], 3);
    std::vector<float> a(o.a.size()), b(o.b.size()), via_bf16(size_t(o.M) * o.N), via_f32(size_t(o.M) * o.N);
    for (size_t i = 0; i < a.size(); ++i) a[i] = bf16_to_f32(o.a[i]);
    for (size_t i = 0; i < b.size(); ++i) b[i] = bf16_to_f32(o.b[i]);
    Gemm g;
    g.bf16(o.a.data(), false, o.b.data(), true, via_bf16.data(), o.M, o.N, o.K, false);
    g.f32(a.data(), false, b.data(), true, via_f32.data(), o.M, o.N, o.K, false);
    EXPECT_EQ(via_bf16, via_f32) << "M N K " << o.M << " " << o.N << " " << o.K << " (" << isa << ")";
  }
}

}  // namespace
}  // namespace anetrain
