// The flash form of causal attention (tiles, online softmax, no T×T matrix) against the form that
// keeps the probabilities, on the same backend and on ref: T ∈ {1, 17, 256, 1024} — one row, a
// partial tile, whole tiles, and sixteen tiles — with GQA and the real head shapes of stories110m
// (12/12 × 64) and qwen3-0.6b (16/8 × 128). lse is checked against a float64 log-sum-exp computed
// here from q and k.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>

#include "contract/registry.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

constexpr double kTol = 1e-4;  // fp32 (the flash kernels are fp32 in every precision)
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
    EXPECT_TRUE(all_close(tag + " flash out " + what, out, *want, kTol));
  EXPECT_TRUE(all_close(tag + " flash dq vs ref", dq, dq_ref, kTol));
  EXPECT_TRUE(all_close(tag + " flash dk vs ref", dk, dk_ref, kTol));
  EXPECT_TRUE(all_close(tag + " flash dv vs ref", dv, dv_ref, kTol));
  EXPECT_TRUE(all_close(tag + " flash dq vs the same backend", dq, dq_cls, kTol));
  EXPECT_TRUE(all_close(tag + " flash dk vs the same backend", dk, dk_cls, kTol));
  EXPECT_TRUE(all_close(tag + " flash dv vs the same backend", dv, dv_cls, kTol));
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
  EXPECT_TRUE(all_close(tag + " flash lse", lse, lse_want, kTol));
}

// The backends with a flash form: cpu in both precisions (its attention is fp32 in both). The ane
// backends inherit these ops but run their attention as fp16 programs (tested in tests/unit/ane).
INSTANTIATE_TEST_SUITE_P(CpuBackends, FlashAttention,
                         ::testing::Combine(::testing::Values("cpu", "cpu-bf16"), ::testing::ValuesIn(kCases)),
                         backend_case_name<FlashCase>);

}  // namespace
}  // namespace anetrain::test
