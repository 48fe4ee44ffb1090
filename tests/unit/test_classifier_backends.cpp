// The classifier stage (logits = xf·Wᵀ, softmax cross-entropy, backward) on every backend against
// ref's default composition, which materialises the N×V logits. The cpu backend streams the
// vocabulary in chunks once N·V passes 16M logits: the chunked cases cross that line with the
// real Qwen3 vocabulary and with odd sizes whose last chunk is partial, so the online
// log-sum-exp, the per-chunk target pick and the chunked dW/dxf products are all exercised.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>

#include "contract/registry.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

constexpr double kTol = 1e-4;  // fp32: the same budget as the ops (one product, one softmax)
constexpr float kGarbage = 555.5f;

struct ClassifierCase {
  const char* name;
  int N, D, V;
};
void PrintTo(const ClassifierCase& c, std::ostream* os) { *os << c.name; }

const ClassifierCase kCases[] = {
    {"odd_one_chunk", 7, 33, 37},
    {"stories110m_vocab", 6, 768, 32000},
    {"qwen3_vocab_chunked", 130, 8, 151936},  // 19.8M logits: 10 chunks
    {"odd_chunked", 257, 5, 65537},           // 16.8M logits: 9 chunks of 8128, the last of 513 columns
};

class ClassifierVsRef : public ::testing::TestWithParam<std::tuple<std::string, ClassifierCase>> {};

TEST_P(ClassifierVsRef, ForwardAndBackward) {
  auto be = make_backend(std::get<0>(GetParam()));
  auto ref = make_backend("ref");
  const ClassifierCase& c = std::get<1>(GetParam());
  const std::string tag = be->name() + " [" + c.name + "]";
  const size_t N = size_t(c.N), D = size_t(c.D), V = size_t(c.V);
  // Logits of a few units either way, so the softmax is far from uniform and its max matters.
  const float a = 4.0f / std::sqrt(float(D));
  const Guarded xf = random_vec(N * D, 1), W = random_vec(V * D, 2, -a, a);
  const auto targets = random_tokens(N, c.V, 3);
  std::vector<int32_t> tg(targets.begin(), targets.end());
  tg.back() = c.V - 1;  // the last column of the last chunk
  const float scale = 0.37f;

  Guarded losses[2], lse[2], dxf[2], dW[2];
  for (int k = 0; k < 2; ++k) {
    Backend& b = k == 0 ? *ref : *be;
    std::vector<float> scratch(b.classifier_scratch_floats(c.N, c.V), kGarbage);
    losses[k] = Guarded(N, kGarbage);
    lse[k] = Guarded(N, kGarbage);
    dxf[k] = Guarded(N * D, kGarbage);
    dW[k] = Guarded(random_vec(V * D, 4));  // += onto non-zero gradients
    b.classifier_loss_fwd(xf.data(), W.data(), tg.data(), losses[k].data(), lse[k].data(), scratch.data(), c.N, c.D,
                          c.V);
    b.classifier_loss_bwd(xf.data(), W.data(), tg.data(), lse[k].data(), scale, dxf[k].data(), dW[k].data(),
                          scratch.data(), c.N, c.D, c.V);
  }
  const double tol = std::max(kTol, be->caps().numerics.stage_rtol);
  EXPECT_TRUE(all_close(tag + " losses", losses[1], losses[0], tol));
  EXPECT_TRUE(all_close(tag + " lse", lse[1], lse[0], tol));
  EXPECT_TRUE(all_close(tag + " dxf", dxf[1], dxf[0], tol));
  EXPECT_TRUE(all_close(tag + " dW", dW[1], dW[0], tol));
  for (auto* g : {&losses[1], &lse[1], &dxf[1], &dW[1]}) EXPECT_TRUE(g->intact(tag));
  // A loss is −log of a probability: positive, and at most lse − min logit; a sanity floor that a
  // chunk-order bug (a target picked twice or never) would break even if ref shared the bug.
  for (size_t n = 0; n < N; ++n) EXPECT_GT(losses[1][n], 0.0f) << tag << " row " << n;
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ClassifierVsRef,
                         ::testing::Combine(::testing::ValuesIn(tested_backends()), ::testing::ValuesIn(kCases)),
                         backend_case_name<ClassifierCase>);

}  // namespace
}  // namespace anetrain::test
