// ane-sim's numerics: fp16 storage after every op (overflow to inf, subnormals, ties to even, NaN
// through softmax), fp32 accumulation inside products and sums, exact integer arithmetic, and
// the ops that only the static and INT8 programs use (conv, quantization).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "core/dtype.h"
#include "mil/builder.h"
#include "mil/fp16.h"
#include "mil/sim/compiler.h"

namespace anetrain::sim {
namespace {

using mil::Builder;
using mil::ElemType;
using mil::Type;
using mil::Var;

const float kInf = std::numeric_limits<float>::infinity();

Tensor tensor(Type t, std::vector<float> v) {
  EXPECT_EQ(int64_t(v.size()), t.numel());
  return {t, std::make_shared<std::vector<float>>(std::move(v))};
}

std::vector<float> run1(const mil::Program& p, std::vector<float> input, const std::string& dir = ".") {
  Compiler rt;
  auto m = rt.compile(p, dir);
  auto out = m->evaluate({tensor(p.inputs[0].second, std::move(input))});
  return *out.at(0).data;
}

// The bulk conversions (the CPU's own instructions where it has them: F16C, aarch64 FCVTN/FCVTL)
// give the scalar functions' bits for every half value, and for fp32 values around every rounding
// boundary, ties and the overflow and subnormal edges included; NaN stays NaN.
TEST(AneSimFp16, BulkConversionsEqualTheScalarOnes) {
  std::vector<uint16_t> halves(65536);
  for (size_t i = 0; i < halves.size(); ++i) halves[i] = uint16_t(i);
  std::vector<float> wide(halves.size());
  mil::fp16_to_fp32(halves.data(), wide.data(), halves.size());
  for (size_t i = 0; i < halves.size(); ++i) {
    const float want = f16_to_f32(halves[i]);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(wide[i])) << i;
    } else {
      ASSERT_EQ(std::memcmp(&wide[i], &want, 4), 0) << "half 0x" << std::hex << i;
    }
  }
  // fp32 inputs: every half value, the midpoints between neighbours (ties), and one fp32 ulp either
  // side of each midpoint, both signs.
  std::vector<float> in;
  for (uint32_t h = 0; h < 0x7c00u; ++h) {
    const float lo = f16_to_f32(uint16_t(h)), hi = f16_to_f32(uint16_t(h + 1));
    const float mid = lo + (hi - lo) / 2;
    for (float v : {lo, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, kInf), hi}) in.push_back(v), in.push_back(-v);
  }
  for (float v : {65504.0f, 65519.0f, 65520.0f, 1e9f, kInf}) in.push_back(v), in.push_back(-v);
  std::vector<uint16_t> narrow(in.size());
  mil::fp32_to_fp16(in.data(), narrow.data(), in.size());
  std::vector<float> rounded = in;
  mil::round_to_fp16(rounded.data(), rounded.size());
  for (size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(narrow[i], f32_to_f16(in[i])) << "fp32 " << in[i];
    const float want = f16_to_f32(f32_to_f16(in[i]));
    ASSERT_EQ(std::memcmp(&rounded[i], &want, 4), 0) << "fp32 " << in[i];
  }
  float nan = std::numeric_limits<float>::quiet_NaN();
  uint16_t h = 0;
  mil::fp32_to_fp16(&nan, &h, 1);
  EXPECT_TRUE(std::isnan(f16_to_f32(h)));
}

TEST(AneSimFp16, OverflowBecomesInfAndPropagates) {
  Builder b;
  Var x = b.input("x", Type::fp16({1, 4, 1, 1}));
  Var y = b.add(x, x, "y");  // 2·x
  Var z = b.sub(y, y, "z");  // inf − inf = NaN
  Var out = b.concat({y, b.mul(y, -1.0, "neg"), z}, 1, "out");
  auto r = run1(b.finish({out}), {60000, 32752, 32760, 1});
  EXPECT_EQ(r[0], kInf);      // 120000 overflows
  EXPECT_EQ(r[1], 65504.0f);  // exactly the largest finite half
  EXPECT_EQ(r[2], kInf);      // 65520 is the tie above 65504: rounds to even, which is inf
  EXPECT_EQ(r[3], 2.0f);
  EXPECT_EQ(r[4], -kInf);
  EXPECT_TRUE(std::isnan(r[8]));
  EXPECT_EQ(r[11], 0.0f);
}

TEST(AneSimFp16, RoundsTiesToEvenAndKeepsSubnormals) {
  Builder b;
  Var x = b.input("x", Type::fp16({1, 5, 1, 1}));
  Var a = b.tensor("a", Type::fp16({1, 5, 1, 1}), {1, 3, 0, 0, 0});
  Var m = b.tensor("m", Type::fp16({1, 5, 1, 1}), {1, 1, 0.5, 1.5, 0.5});
  Var out = b.mul(b.add(x, a, "xa"), m, "out");
  float tiny = std::ldexp(1.0f, -24), min_normal = std::ldexp(1.0f, -14);
  auto r = run1(b.finish({out}), {2048, 2048, tiny, tiny, min_normal});
  EXPECT_EQ(r[0], 2048.0f);                  // 2049 is halfway between 2048 and 2050: even is 2048
  EXPECT_EQ(r[1], 2052.0f);                  // 2051 is halfway between 2050 and 2052: even is 2052
  EXPECT_EQ(r[2], 0.0f);                     // half the smallest subnormal ties to zero
  EXPECT_EQ(r[3], std::ldexp(1.0f, -23));    // 1.5 subnormal ulps ties to 2
  EXPECT_EQ(r[4], std::ldexp(1.0f, -15));    // a subnormal result is kept, not flushed
}

TEST(AneSimFp16, SoftmaxCarriesInfAndNaN) {
  Builder b;
  Var x = b.input("x", Type::fp16({1, 4, 1, 3}));
  // The seed's causal mask constant: −65504 plus a negative score overflows to −inf in fp16.
  Var mask = b.tensor("mask", Type::fp16({1, 1, 1, 3}), {0, -65504, 0});
  Var out = b.softmax(b.add(x, mask, "masked"), -1, "p");
  auto r = run1(b.finish({out}), {0, -16, 0,  /* masked entry becomes −inf */
                                  1, 5, std::nanf(""),
                                  2, 0, 2,
                                  -kInf, -16, -kInf});
  EXPECT_EQ(r[0], 0.5f);
  EXPECT_EQ(r[1], 0.0f);
  EXPECT_EQ(r[2], 0.5f);
  for (int i = 3; i < 6; ++i) EXPECT_TRUE(std::isnan(r[i])) << i;  // a NaN poisons its row
  EXPECT_EQ(r[6], 0.5f);
  EXPECT_EQ(r[7], 0.0f);
  for (int i = 9; i < 12; ++i) EXPECT_TRUE(std::isnan(r[i])) << i;  // all −inf: 0/0
}

TEST(AneSimFp16, ProductsAndSumsAccumulateInFp32) {
  // 4096 ones: an fp16 accumulator would stop at 2048 (2048 + 1 rounds back to 2048).
  Builder b;
  Var x = b.input("x", Type::fp16({1, 1, 1, 4096}));
  Var dot = b.matmul(x, x, false, true, "dot");
  Var sum = b.reduce_sum(x, {3}, true, "sum");
  Var out = b.concat({dot, sum}, 3, "out");
  auto r = run1(b.finish({out}), std::vector<float>(4096, 1.0f));
  EXPECT_EQ(r[0], 4096.0f);
  EXPECT_EQ(r[1], 4096.0f);
}

TEST(AneSimFp16, StaticRmsNormSumOfSquaresOverflowsPastMeanSquare85) {
  // The seed's static-pipeline RMSNorm keeps Σx² in fp16: at D = 768 it overflows once the mean
  // square passes ~85 (65504 / 768), and rsqrt(inf) = 0 zeroes the layer.
  auto rms_sum = [](float v) {
    Builder b;
    Var x = b.input("x", Type::fp16({1, 768, 1, 1}));
    Var ss = b.reduce_sum(b.mul(x, x, "sq"), {1}, true, "ss");
    return run1(b.finish({ss}), std::vector<float>(768, v))[0];
  };
  EXPECT_EQ(rms_sum(9.0f), 62208.0f);  // mean square 81
  EXPECT_EQ(rms_sum(9.5f), kInf);      // mean square 90.25
}

TEST(AneSimFp16, IntegerValuedDataIsExact) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> d(-4, 4);
  const int M = 24, K = 64, N = 40;
  std::vector<float> x(M * K), w(K * N);
  for (float& v : x) v = float(d(rng));
  for (float& v : w) v = float(d(rng));
  Builder b;
  Var in = b.input("x", Type::fp16({1, 1, M, K}));
  Var wt = b.tensor("w", Type::fp16({1, 1, K, N}), std::vector<double>(w.begin(), w.end()));
  auto r = run1(b.finish({b.matmul(in, wt, false, false, "y")}), x);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      int exact = 0;
      for (int k = 0; k < K; ++k) exact += int(x[i * K + k]) * int(w[k * N + j]);
      ASSERT_EQ(r[i * N + j], float(exact)) << i << "," << j;  // |sum| ≤ 1024: every integer is an fp16
    }
}

TEST(AneSimOps, ConvMatchesDirectLoops) {
  // 3×3 valid conv, 2 groups, against the definition.
  const int C = 4, OC = 6, H = 5, W = 7, G = 2;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> d(-3, 3);
  std::vector<double> w(OC * (C / G) * 9);
  for (double& v : w) v = d(rng) * 0.25;
  std::vector<float> x(C * H * W);
  for (float& v : x) v = float(d(rng));
  Builder b;
  Var in = b.input("x", Type::fp16({1, C, H, W}));
  Var wt = b.tensor("w", Type::fp16({OC, C / G, 3, 3}), w);
  auto r = run1(b.finish({b.conv(in, wt, G, "y")}), x);
  ASSERT_EQ(r.size(), size_t(OC * 3 * 5));
  for (int o = 0; o < OC; ++o)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 5; ++j) {
        double acc = 0;
        int g = o / (OC / G);
        for (int c = 0; c < C / G; ++c)
          for (int kh = 0; kh < 3; ++kh)
            for (int kw = 0; kw < 3; ++kw)
              acc += w[((o * (C / G) + c) * 3 + kh) * 3 + kw] * x[((g * (C / G) + c) * H + i + kh) * W + j + kw];
        ASSERT_EQ(r[(o * 3 + i) * 5 + j], float(acc)) << o << " " << i << " " << j;  // small exact sums
      }
}

TEST(AneSimOps, MovementOpsPlaceEveryElement) {
  Builder b;
  Var x = b.input("x", Type::fp16({1, 2, 3, 4}));
  Var t = b.transpose(x, {0, 3, 1, 2}, "t");             // [1,4,2,3]
  Var s = b.slice(t, {0, 1, 0, 1}, {1, 2, 2, 2}, "s");   // [1,2,2,2]
  Var out = b.reshape(b.concat({s, s}, 2, "c"), {1, 16, 1, 1}, "out");
  std::vector<float> in(24);
  for (int i = 0; i < 24; ++i) in[i] = float(i);
  auto r = run1(b.finish({out}), in);
  // t[0,a,b,c] = x[0,b,c,a] = b*12 + c*4 + a; s = t[:, 1:3, :, 1:3]; concat along axis 2.
  std::vector<float> want;
  for (int a = 1; a < 3; ++a)
    for (int rep = 0; rep < 2; ++rep)
      for (int bb = 0; bb < 2; ++bb)
        for (int c = 1; c < 3; ++c) want.push_back(float(bb * 12 + c * 4 + a));
  EXPECT_EQ(r, want);
}

TEST(AneSimOps, W8A8QuantizeDequantize) {
  Builder b;
  Var x = b.input("x", Type::fp16({1, 6, 1, 1}));
  Var q = b.quantize(x, 0.125, "q");
  Var out = b.dequantize(q, 0.125, "dq");
  auto r = run1(b.finish({out}), {0.3f, -0.0625f, 0.1875f, 100.0f, -100.0f, 1.0f});
  EXPECT_EQ(r, (std::vector<float>{0.25f, 0.0f, 0.25f, 15.875f, -16.0f, 1.0f}));  // ties to even, clamp to int8
}

}  // namespace
}  // namespace anetrain::sim
