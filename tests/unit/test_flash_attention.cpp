// The flash form of causal attention (tiles, online softmax, no T×T matrix) against the form that
// keeps the probabilities, on the same backend and on ref: T ∈ {1, 17, 256, 1024} — one row, a
// partial tile, whole tiles, and sixteen tiles — with GQA and the real head shapes of stories110m
// (12/12 × 64) and qwen3-0.6b (16/8 × 128). lse is checked against a float64 log-sum-exp computed
// here from q and k. cpu-bf16's tile products (AMX) are checked alone against float64 sums of the
// same bf16-rounded inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

#include "backends/cpu/attention_tiles_bf16.h"
#include "contract/registry.h"
#include "core/dtype.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

constexpr double kTol = 1e-4;  // fp32
constexpr float kGarbage = 321.5f;

struct FlashCase {
  const char* name;
  int B, T, Hq, Hkv, hd;
};
void PrintTo(const FlashCase& c, std::ostream* os) { *os << c.name; }

const FlashCase kCases[] = {
    {"T1_gqa2", 2, 1, 4, 2, 16},          {"T17_gqa3", 1, 17, 6, 2, 10},
    {"T256_stories110m", 1, 256, 12, 12, 64}, {"T256_qwen3", 1, 256, 16, 8, 128},
    {"T1024_gqa2", 1, 1024, 4, 2, 64},     {"T130_batch3_gqa2", 3, 130, 4, 2, 32},  // batch offsets, partial tile
};

class FlashAttention : public ::testing::TestWithParam<std::tuple<std::string, FlashCase>> {};

TEST_P(FlashAttention, EqualsAttentionWithProbabilities) {
  auto be = make_backend(std::get<0>(GetParam()));
  auto ref = make_backend("ref");
  const FlashCase& c = std::get<1>(GetParam());
  const std::string tag = be->name() + " [" + c.name + "]";
  // cpu-bf16 rounds Q, K, V, dO, P and dS to bf16 for its tile products (where the CPU has AMX):
  // each rounding moves a value by ≤ 2⁻⁸ relative, so a product's terms by ≤ 2⁻⁷, and an output
  // chains up to three products (scores → P → O; dP → dS → dQ, dK) — the bound the backend
  // declares for a stage (2e-2; measured ≤ 1.3e-2 here, where |q|, |k| ≤ 3 make sharp softmaxes).
  const double tol = std::max(kTol, be->caps().numerics.stage_rtol);
  const AttnShape a{c.B, c.T, c.Hq, c.Hkv, c.hd};
  const size_t qn = size_t(c.B) * c.T * c.Hq * c.hd, kvn = size_t(c.B) * c.T * c.Hkv * c.hd,
               pn = size_t(c.B) * c.Hq * c.T * c.T, ln = size_t(c.B) * c.Hq * c.T;
  const Guarded q = random_vec(qn, 61, -3, 3), k = random_vec(kvn, 62, -3, 3), v = random_vec(kvn, 63),
                dout = random_vec(qn, 64);

  // The form with probabilities, on ref (the oracle) and on the backend itself.
  Guarded out_ref(qn), p_ref(pn), out_cls(qn), p_cls(pn);
  ref->attention_fwd(q.data(), k.data(), v.data(), out_ref.data(), p_ref.data(), a);
  be->attention_fwd(q.data(), k.data(), v.data(), out_cls.data(), p_cls.data(), a);
  Guarded dq_ref(qn), dk_ref(kvn), dv_ref(kvn), dp(pn);
  ref->attention_bwd(dout.data(), q.data(), k.data(), v.data(), p_ref.data(), dq_ref.data(), dk_ref.data(),
                     dv_ref.data(), dp.data(), a);
  Guarded dq_cls(qn), dk_cls(kvn), dv_cls(kvn);
  be->attention_bwd(dout.data(), q.data(), k.data(), v.data(), p_cls.data(), dq_cls.data(), dk_cls.data(),
                    dv_cls.data(), dp.data(), a);

  Guarded out(qn, kGarbage), lse(ln, kGarbage), dq(qn, kGarbage), dk(kvn, kGarbage), dv(kvn, kGarbage);
  be->attention_flash_fwd(q.data(), k.data(), v.data(), out.data(), lse.data(), a);
  be->attention_flash_bwd(dout.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), dq.data(), dk.data(),
                          dv.data(), a);
  for (const auto& [what, want] : {std::pair<const char*, const Guarded*>{"vs ref", &out_ref}, {"vs the same backend", &out_cls}})
    EXPECT_TRUE(all_close(tag + " flash out " + what, out, *want, tol));
  EXPECT_TRUE(all_close(tag + " flash dq vs ref", dq, dq_ref, tol));
  EXPECT_TRUE(all_close(tag + " flash dk vs ref", dk, dk_ref, tol));
  EXPECT_TRUE(all_close(tag + " flash dv vs ref", dv, dv_ref, tol));
  EXPECT_TRUE(all_close(tag + " flash dq vs the same backend", dq, dq_cls, tol));
  EXPECT_TRUE(all_close(tag + " flash dk vs the same backend", dk, dk_cls, tol));
  EXPECT_TRUE(all_close(tag + " flash dv vs the same backend", dv, dv_cls, tol));
  for (const Guarded* g : {&out, &lse, &dq, &dk, &dv}) EXPECT_TRUE(g->intact(tag));

  // lse: log Σ_{j ≤ i} exp(q_i·k_j / √hd), in double.
  Guarded lse_want(ln);
  const int group = c.Hq / c.Hkv;
  for (int b = 0; b < c.B; ++b)
    for (int h = 0; h < c.Hq; ++h)
      for (int i = 0; i < c.T; ++i) {
        const float* qi = q.data() + ((size_t(b) * c.T + i) * c.Hq + h) * c.hd;
        std::vector<double> s(size_t(i) + 1);
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j <= i; ++j) {
          const float* kj = k.data() + ((size_t(b) * c.T + j) * c.Hkv + h / group) * c.hd;
          double dot = 0;
          for (int e = 0; e < c.hd; ++e) dot += double(qi[e]) * kj[e];
          s[size_t(j)] = dot / std::sqrt(double(c.hd));
          mx = std::max(mx, s[size_t(j)]);
        }
        for (double x : s) sum += std::exp(x - mx);
        lse_want[(size_t(b) * c.Hq + h) * c.T + i] = float(mx + std::log(sum));
      }
  EXPECT_TRUE(all_close(tag + " flash lse", lse, lse_want, tol));
}

// The backends with a flash form: cpu in both precisions. The ane backends inherit these ops but
// run their attention as fp16 programs (tested in tests/unit/ane).
INSTANTIATE_TEST_SUITE_P(CpuBackends, FlashAttention,
                         ::testing::Combine(::testing::Values("cpu", "cpu-bf16"), ::testing::ValuesIn(kCases)),
                         backend_case_name<FlashCase>);

// C = alpha·A·B (+ C) from each packer's layout, at odd sizes (a partial pair, partial 16-blocks,
// strided rows) and a whole tile, against float64 sums of the bf16-rounded inputs. The only error
// left is fp32 accumulation: ≤ K·2⁻²⁴ of the sum of |terms| per element.
TEST(Bf16AttentionTiles, ProductsEqualSumsOfRoundedInputs) {
  namespace t = bf16_tiles;
  if (!t::available()) GTEST_SKIP() << "no AMX-BF16 here (the CPU, or ANETRAIN_CPU_LEVEL below amx)";
  struct Shape {
    int M, N, K;
  };
  for (const Shape& sh : {Shape{5, 37, 13}, Shape{64, 64, 64}, Shape{17, 130, 33}, Shape{33, 20, 1}})
    for (bool transposed : {false, true}) {
      SCOPED_TRACE("M=" + std::to_string(sh.M) + " N=" + std::to_string(sh.N) + " K=" + std::to_string(sh.K) +
                   (transposed ? ", transposed packers" : ""));
      const int M = sh.M, N = sh.N, K = sh.K, Kp = t::pairs(K), lda = t::round16(Kp), ldb = t::round16(N) + 16;
      // x: M×K (or K×M), y: K×N (or N×K), each with 3 spare floats per row (strided rows).
      const size_t ldx = size_t(transposed ? M : K) + 3, ldy = size_t(transposed ? K : N) + 3;
      const std::vector<float> x = random_vec(ldx * size_t(transposed ? K : M), 71, -2, 2),
                               y = random_vec(ldy * size_t(transposed ? N : K), 72, -2, 2);
      auto at_x = [&](int m, int k) { return transposed ? x[size_t(k) * ldx + m] : x[size_t(m) * ldx + k]; };
      auto at_y = [&](int k, int n) { return transposed ? y[size_t(n) * ldy + k] : y[size_t(k) * ldy + n]; };
      std::vector<uint32_t> A(size_t(t::round16(M)) * lda + 64, 0xffffffffu), B(size_t(lda) * ldb, 0xffffffffu);
      if (transposed) {
        t::pack_row_pairs_transposed(x.data(), ldx, K, M, A.data(), lda);
        t::pack_cols(y.data(), ldy, N, K, B.data(), ldb);
      } else {
        t::pack_rows(x.data(), ldx, M, K, A.data(), lda);
        t::pack_row_pairs(y.data(), ldy, K, N, B.data(), ldb);
      }
      const size_t ldc = size_t(N) + 5;
      const std::vector<float> c0 = random_vec(size_t(M) * ldc, 73);
      std::vector<float> C = c0;
      {
        const t::ThreadTiles tiles;
        t::gemm(M, N, Kp, A.data(), lda, B.data(), ldb, C.data(), ldc, 0.5f, transposed);
      }
      auto r = [](float v) { return double(bf16_to_f32(f32_to_bf16_branchless(v))); };
      double worst = 0;
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
          double sum = 0, mag = 0;
          for (int k = 0; k < K; ++k) {
            sum += r(at_x(m, k)) * r(at_y(k, n));
            mag += std::fabs(r(at_x(m, k)) * r(at_y(k, n)));
          }
          const double want = 0.5 * sum + (transposed ? c0[size_t(m) * ldc + n] : 0.0);
          const double bound = 0.5 * K * std::ldexp(1.0, -24) * mag + 1e-7 * std::fabs(want) + 1e-30;
          worst = std::max(worst, std::fabs(C[size_t(m) * ldc + n] - want) / bound);
        }
      EXPECT_LE(worst, 1.0) << "worst error in units of its bound";
      for (int m = 0; m < M; ++m)  // the spare floats between rows are not written
        for (size_t n = size_t(N); n < ldc; ++n) EXPECT_EQ(C[size_t(m) * ldc + n], c0[size_t(m) * ldc + n]);
    }
}

}  // namespace
}  // namespace anetrain::test
