// The cpu backend's run-time kernel choice: for every SIMD level this CPU offers (lowered in
// process on aarch64, so one machine runs them all: under `qemu-aarch64 -cpu max` the DotProd
// kernel, under `-cpu cortex-a72` the plain-NEON one), the name of the kernel each product and
// decode attention chose, and those kernels against the reference at odd and real shapes
// (stories110m 768/2048, qwen3-0.6b 1024/3072 and head width 128; Q8_0 groups 32 and 64), the
// same bits with 1 and 2 threads, and the Q8_0 activation quantizer bit for bit.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/attend_head.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/packed_dot.h"
#include "contract/packed.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "packed_test_util.h"

namespace anetrain {
namespace {

using test::normal_values;

// The levels to run: each one up to what the CPU (and ANETRAIN_CPU_LEVEL) allows; off aarch64
// only `none`, where the x86 or portable kernels run.
std::vector<ArmLevel> offered_levels() {
  const ArmLevel top = arm_level();
  if (top == ArmLevel::none) return {ArmLevel::none};
  std::vector<ArmLevel> levels;
  for (ArmLevel l : {ArmLevel::neon, ArmLevel::dotprod, ArmLevel::bf16})
    if (l <= top) levels.push_back(l);
  return levels;
}

// Lowers the level for one scope, then lifts the limit again.
struct LevelScope {
  explicit LevelScope(ArmLevel l) {
    if (l != ArmLevel::none) limit_arm_level(l);
  }
  ~LevelScope() { limit_arm_level(ArmLevel::bf16); }
};

struct Expected {
  std::string f32, bf16, q8_g32, q8_g64, q8_g40, attention;
};

Expected expected_kernels(ArmLevel level) {
  if (level != ArmLevel::none) {
    const std::string q8 = level >= ArmLevel::dotprod ? "q8_dotprod" : "q8_neon";
    return {"f32_neon", "bf16_neon", q8, q8, "q8_portable", "neon"};
  }
#if defined(__x86_64__)
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  const bool vnni = avx512 && __builtin_cpu_supports("avx512vnni") && x86_level() >= X86Level::avx512vnni;
  return {avx512 ? "f32_avx512" : "f32_portable", avx512 ? "bf16_avx512" : "bf16_portable",
          vnni ? "q8_vnni_g32" : "q8_portable", vnni ? "q8_vnni_only64" : "q8_portable", "q8_portable",
          __builtin_cpu_supports("avx512f") ? "avx512" : "portable"};
#else
  return {"f32_portable", "bf16_portable", "q8_portable", "q8_portable", "q8_portable", "portable"};
#endif
}

std::string kernel_of(WeightFormat f, int group) {
  const MatrixRef shape{f, nullptr, nullptr, 1, 256, group};
  return RowDot(shape).kernel();
}

TEST(KernelDispatch, EachOfferedLevelChoosesItsKernels) {
  const ArmFeatures det = arm_features_detected();
  std::cout << "[ detected ] aarch64 level " << arm_level_name(arm_level_detected()) << " (dotprod " << det.dotprod
            << ", bf16 " << det.bf16 << ", i8mm " << det.i8mm << "); running " << arm_level_name(arm_level())
            << "\n";
  for (ArmLevel level : offered_levels()) {
    SCOPED_TRACE("level " + arm_level_name(level));
    LevelScope scope(level);
    EXPECT_EQ(arm_level(), level);
    const Expected want = expected_kernels(level);
    EXPECT_EQ(kernel_of(WeightFormat::f32, 0), want.f32);
    EXPECT_EQ(kernel_of(WeightFormat::bf16, 0), want.bf16);
    EXPECT_EQ(kernel_of(WeightFormat::q8_0, 32), want.q8_g32);
    EXPECT_EQ(kernel_of(WeightFormat::q8_0, 64), want.q8_g64);
    EXPECT_EQ(kernel_of(WeightFormat::q8_0, 40), want.q8_g40);  // no SIMD kernel takes groups of 40
    for (int hd : {16, 32, 64, 128}) EXPECT_EQ(attend_head_kernel(hd), want.attention) << "hd " << hd;
    EXPECT_STREQ(attend_head_kernel(10), "portable");
    std::cout << "[ level    ] " << arm_level_name(level) << ": " << want.f32 << ", " << want.bf16 << ", "
              << want.q8_g32 << ", attention " << want.attention << "\n";
  }
}

// Each x86 level up to the CPU's picks its Q8_0 prefill path (a prompt's chunk past 4 tokens),
// so an AMX machine runs what Zen 4 (avx512vnni) and Skylake-X (avx512) would.
TEST(KernelDispatch, X86LevelsChooseTheQ8PrefillPath) {
  EXPECT_THROW(parse_x86_level("neon"), Error);
  const X86Level detected = x86_level_detected();
  if (detected == X86Level::none) GTEST_SKIP() << "x86 levels: this CPU has no AVX-512";
  std::vector<int8_t> q(256);
  std::vector<float> sc(8, 1.0f);
  const MatrixRef W{WeightFormat::q8_0, q.data(), sc.data(), 1, 256, 32};
  for (X86Level l : {X86Level::avx512, X86Level::avx512vnni, X86Level::amx}) {
    if (l > x86_level()) continue;
    limit_x86_level(l);
    SCOPED_TRACE("level " + x86_level_name(l));
    EXPECT_EQ(x86_level(), l);
    EXPECT_EQ(q8_prefill_path(W, 4), Q8Prefill::rows);
    const Q8Prefill chunk = q8_prefill_path(W, 64);
    if (l == X86Level::avx512) {
      EXPECT_EQ(chunk, Q8Prefill::rows);
    } else if (l == X86Level::avx512vnni) {
      EXPECT_EQ(chunk, Q8Prefill::vnni_tiles);
    } else {  // AMX tiles also need Linux's grant of the tile state; without it, VNNI's tiles
      EXPECT_NE(chunk, Q8Prefill::rows);
    }
    EXPECT_EQ(std::string(RowDot(W).kernel()), l == X86Level::avx512 ? "q8_portable" : "q8_vnni_g32");
  }
  limit_x86_level(X86Level::amx);  // lifting the limit never claims more than the CPU has
  EXPECT_LE(int(x86_level()), int(detected));
}

TEST(KernelDispatch, LimitsOnlyLower) {
  if (arm_level_detected() == ArmLevel::none) GTEST_SKIP() << "aarch64 levels: this CPU is not aarch64";
  {
    LevelScope scope(ArmLevel::bf16);
    EXPECT_LE(arm_level(), arm_level_detected());
    EXPECT_EQ(arm_features().bf16, arm_level() >= ArmLevel::bf16);
  }
  LevelScope scope(ArmLevel::neon);
  EXPECT_EQ(arm_level(), ArmLevel::neon);
  EXPECT_FALSE(arm_features().dotprod);
  EXPECT_FALSE(arm_features().bf16);
  EXPECT_THROW(parse_arm_level("sve"), Error);
}

// linear_fwd_packed against the double-precision reference (the bound of test_packed_kernels:
// 1e-5 of the output's scale); with compare_threads, also the same bits from 1 and 2 threads.
void check_product(WeightFormat f, int N, int rows, int cols, int group, uint32_t seed, bool compare_threads = false) {
  SCOPED_TRACE(weight_format_name(f) + " " + std::to_string(rows) + "x" + std::to_string(cols) + " group " +
               std::to_string(group) + " N=" + std::to_string(N));
  test::PackedMatrix m(normal_values(size_t(rows) * cols, seed), rows, cols, f, group);
  if (f == WeightFormat::q8_0) m.q[1] = -128;  // possible in a file: must be multiplied exactly
  const std::vector<float> x = normal_values(size_t(N) * cols, seed + 7, 2.0f);
  std::vector<float> want(size_t(N) * rows), got(want.size());
  float* yw[] = {want.data()};
  packed_linear_ref(x.data(), N, &m.ref, yw, 1);
  CpuBackend cpu;
  const int saved = omp_get_max_threads();
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    std::vector<float> out(want.size(), NAN);
    float* y[] = {out.data()};
    cpu.linear_fwd_packed(x.data(), N, &m.ref, y, 1);
    omp_set_num_threads(saved);
    return out;
  };
  got = run(compare_threads ? 1 : saved);
  double scale = 1e-30;
  for (float v : want) scale = std::max(scale, double(std::fabs(v)));
  for (size_t i = 0; i < want.size(); ++i) ASSERT_LE(std::fabs(double(got[i]) - want[i]), 1e-5 * scale) << i;
  if (compare_threads) {
    const std::vector<float> two = run(2);
    EXPECT_EQ(std::memcmp(got.data(), two.data(), got.size() * sizeof(float)), 0) << "1 vs 2 threads";
  }
}

TEST(KernelDispatch, ProductsMatchReferenceAtEveryLevel) {
  for (ArmLevel level : offered_levels()) {
    SCOPED_TRACE("level " + arm_level_name(level));
    LevelScope scope(level);
    for (WeightFormat f : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::q8_0})
      for (int N : {1, 3}) {
        check_product(f, N, 37, 96, 32, 1);     // odd rows; three groups of 32 (one past a pair)
        check_product(f, N, 48, 768, 32, 2);    // stories110m width
        check_product(f, N, 40, 2048, 64, 3);   // stories110m FFN width, version-2 groups
        check_product(f, N, 33, 1024, 32, 4);   // qwen3-0.6b width
        check_product(f, N, 24, 3072, 64, 5);   // qwen3-0.6b FFN width
        check_product(f, N, 9, 1280, 128, 6);   // groups of 128
        check_product(f, N, 7, 240, 48, 7);     // groups of 48: a multiple of 16, not of 32
        check_product(f, N, 5, 160, 40, 8);     // groups of 40: the portable loop
        if (f != WeightFormat::q8_0) check_product(f, N, 9, 101, 0, 9);  // widths off every SIMD step
      }
  }
}

// On aarch64 the Q8_0 kernels add each group's exact integer sum, times its two scales, in group
// order in fp32 (kernels_arm.h): llama2.c runq.c's arithmetic, so their bits are runq.c's. (x86's
// VNNI kernels add lanes in another order and are held to the reference bound above instead.)
TEST(KernelDispatch, ArmQ8ProductsAreRunqsArithmeticBitForBit) {
  if (arm_level_detected() == ArmLevel::none) GTEST_SKIP() << "aarch64 kernels: this CPU is not aarch64";
  struct Shape {
    int rows, cols, group;
  };
  for (ArmLevel level : offered_levels()) {
    SCOPED_TRACE("level " + arm_level_name(level));
    LevelScope scope(level);
    uint32_t seed = 40;
    for (Shape sh : {Shape{37, 96, 32}, Shape{48, 768, 32}, Shape{40, 2048, 64}, Shape{7, 240, 48}}) {
      SCOPED_TRACE(std::to_string(sh.rows) + "x" + std::to_string(sh.cols) + " group " + std::to_string(sh.group));
      test::PackedMatrix m(normal_values(size_t(sh.rows) * sh.cols, ++seed), sh.rows, sh.cols, WeightFormat::q8_0,
                           sh.group);
      const std::vector<float> x = normal_values(size_t(sh.cols), ++seed, 2.0f);
      std::vector<int8_t> xq(x.size());
      std::vector<float> xs(x.size() / size_t(sh.group));
      quantize_q8_0(x.data(), x.size(), sh.group, xq.data(), xs.data());
      std::vector<float> out(size_t(sh.rows), NAN);
      float* y[] = {out.data()};
      CpuBackend().linear_fwd_packed(x.data(), 1, &m.ref, y, 1);
      const int G = sh.cols / sh.group;
      for (int r = 0; r < sh.rows; ++r) {
        float want = 0.0f;
        for (int g = 0; g < G; ++g) {
          int32_t d = 0;
          for (int i = g * sh.group; i < (g + 1) * sh.group; ++i) d += int32_t(m.q[size_t(r) * sh.cols + i]) * xq[i];
          want += float(d) * m.scales[size_t(r) * G + g] * xs[g];
        }
        ASSERT_EQ(std::memcmp(&out[r], &want, sizeof(float)), 0) << "row " << r << ": " << out[r] << " vs " << want;
      }
    }
  }
}

// Rows are divided among threads, but each row is one kernel call start to end: the bits cannot
// depend on the thread count. (Needs a second thread: OMP_NUM_THREADS=1 runs opt out.)
TEST(KernelDispatch, ProductsGiveTheSameBitsWithOneAndTwoThreads) {
  if (omp_get_max_threads() < 2) GTEST_SKIP() << "OMP_NUM_THREADS=1: this run does not start a second thread";
  for (ArmLevel level : offered_levels()) {
    SCOPED_TRACE("level " + arm_level_name(level));
    LevelScope scope(level);
    for (WeightFormat f : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::q8_0}) {
      check_product(f, 1, 200, 768, 32, 21, true);
      check_product(f, 2, 130, 1024, 64, 22, true);
    }
  }
}

// quantize_q8_0's bits from the cpu backend's activation path (the NEON quantizer on aarch64):
// random rows, ties at .5, denormal groups, ±∞, NaN, all-zero groups.
TEST(KernelDispatch, ActivationQuantizerIsTheReferenceBitForBit) {
  std::mt19937 rng(3);
  for (int group : {16, 32, 64, 128}) {
    SCOPED_TRACE("group " + std::to_string(group) + " (" + q8_quantizer_kernel(group) + ")");
    for (int trial = 0; trial < 300; ++trial) {
      const int n = 4 * 128;
      std::vector<float> x = normal_values(size_t(n), uint32_t(trial), 3.0f);
      if (trial % 4 == 1)
        for (float& v : x) v = float(int(rng() % 255) - 127) * 0.5f;  // exact halves: rounding ties
      if (trial % 4 == 2)
        for (float& v : x) v = std::ldexp(float(int(rng() % 2001) - 1000), -int(rng() % 40) - 120);  // denormals
      if (trial % 4 == 3)
        for (float& v : x) {
          uint32_t bits = uint32_t(rng());
          std::memcpy(&v, &bits, 4);  // any pattern: NaN, ∞, huge, tiny
        }
      if (trial % 5 == 0) std::fill(x.begin(), x.begin() + group, 0.0f);
      if (trial % 7 == 0) x[size_t(rng() % n)] = trial % 14 == 0 ? INFINITY : -INFINITY;
      std::vector<int8_t> want(static_cast<size_t>(n));
      std::vector<float> want_scales(size_t(n / group));
      quantize_q8_0(x.data(), size_t(n), group, want.data(), want_scales.data());
      PackedActivation a;
      a.prepare(x.data(), 4, 128, WeightFormat::q8_0, group);
      ASSERT_EQ(std::memcmp(a.q.data(), want.data(), want.size()), 0) << "trial " << trial;
      ASSERT_EQ(std::memcmp(a.scales.data(), want_scales.data(), want_scales.size() * 4), 0) << "trial " << trial;
    }
  }
#if defined(__aarch64__)
  EXPECT_STREQ(q8_quantizer_kernel(32), "neon");
#endif
}

// attend_head against a double-precision softmax attention, at the SIMD widths and an odd one,
// over caches of 1 to 300 positions with rows wider than the head (a GQA cache layout).
TEST(KernelDispatch, DecodeAttentionMatchesReference) {
  for (int hd : {16, 32, 64, 128, 10}) {
    for (int n : {1, 2, 3, 17, 300}) {
      SCOPED_TRACE("hd " + std::to_string(hd) + " (" + attend_head_kernel(hd) + ") n " + std::to_string(n));
      const int ldkv = 3 * hd;
      const std::vector<float> q = normal_values(size_t(hd), 11, 2.0f), k = normal_values(size_t(n) * ldkv, 12),
                               v = normal_values(size_t(n) * ldkv, 13);
      const float scale = 1.0f / std::sqrt(float(hd));
      std::vector<float> p(static_cast<size_t>(n)), out(static_cast<size_t>(hd), NAN);
      attend_head(q.data(), k.data(), v.data(), ldkv, n, hd, scale, p.data(), out.data());
      std::vector<double> w(static_cast<size_t>(n));
      double mx = -1e300, z = 0;
      for (int t = 0; t < n; ++t) {
        double s = 0;
        for (int j = 0; j < hd; ++j) s += double(k[size_t(t) * ldkv + j]) * q[size_t(j)];
        w[size_t(t)] = s * scale;
        mx = std::max(mx, w[size_t(t)]);
      }
      for (double& e : w) z += (e = std::exp(e - mx));
      for (int j = 0; j < hd; ++j) {
        double o = 0;
        for (int t = 0; t < n; ++t) o += w[size_t(t)] / z * v[size_t(t) * ldkv + j];
        ASSERT_NEAR(out[size_t(j)], o, 2e-5) << "column " << j;
      }
      for (int t = 0; t < n; ++t) ASSERT_NEAR(p[size_t(t)], w[size_t(t)] / z, 1e-5);
    }
  }
}

}  // namespace
}  // namespace anetrain
