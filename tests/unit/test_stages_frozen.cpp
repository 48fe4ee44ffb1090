// Frozen weights in the stages: a null gradient pointer means the weight is frozen, and every
// backend's stage backward then skips that weight's gradient product while still producing dx
// and the other gradients — bit for bit what it produces with every gradient present (the same
// backend, the same inputs: skipping a product changes nothing else).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "contract/backend.h"
#include "contract/registry.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

struct FrozenCase {
  const char* name;
  int B, T, D, F, Hq, Hkv, hd;
  bool qk_norm;
  RopeStyle rope;
};
void PrintTo(const FrozenCase& c, std::ostream* os) { *os << c.name; }

const FrozenCase kCases[] = {
    {"gqa2_interleaved", 2, 5, 32, 48, 4, 2, 8, false, RopeStyle::interleaved},
    {"gqa2_half_qknorm", 1, 6, 32, 40, 4, 2, 8, true, RopeStyle::half},
};

using Field = float* LayerTensors::*;
constexpr Field kFields[] = {&LayerTensors::attn_norm, &LayerTensors::wq,       &LayerTensors::wk,
                             &LayerTensors::wv,        &LayerTensors::wo,       &LayerTensors::q_norm,
                             &LayerTensors::k_norm,    &LayerTensors::ffn_norm, &LayerTensors::w_gate,
                             &LayerTensors::w_up,      &LayerTensors::w_down};
constexpr const char* kFieldNames[] = {"attn_norm", "wq",       "wk",     "wv",   "wo",    "q_norm",
                                       "k_norm",    "ffn_norm", "w_gate", "w_up", "w_down"};
constexpr size_t kNumFields = sizeof(kFields) / sizeof(kFields[0]);

// Which fields are frozen in each variant: the matrices, the gains, and every other tensor.
const std::vector<std::vector<int>> kFrozenSets = {{1, 2, 3, 4, 8, 9, 10}, {0, 5, 6, 7}, {0, 2, 4, 6, 8, 10}};

::testing::AssertionResult same_bits(const std::string& what, const std::vector<float>& got,
                                     const std::vector<float>& want) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << what << ": sizes differ";
  for (size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0)
      return ::testing::AssertionFailure() << what << ": differs at " << i << " (" << got[i] << " vs " << want[i]
                                           << ")";
  return ::testing::AssertionSuccess();
}

class StagesWithFrozenWeights : public ::testing::TestWithParam<std::tuple<std::string, FrozenCase>> {
 protected:
  void SetUp() override {
    be = make_backend(std::get<0>(GetParam()));
    const FrozenCase& c = std::get<1>(GetParam());
    d = BlockDims{c.B, c.T, c.D, c.Hq, c.Hkv, c.hd, c.F, 1e-5f, 0.8f, 1e4f, c.rope, c.qk_norm};
  }
  size_t N() const { return size_t(d.N()); }
  size_t numel(size_t field) const {
    const size_t D = d.D, F = d.F, qd = size_t(d.Hq) * d.hd, kvd = size_t(d.Hkv) * d.hd, hd = d.hd;
    const size_t sizes[] = {D, qd * D, kvd * D, kvd * D, D * qd, d.qk_norm ? hd : 0, d.qk_norm ? hd : 0,
                            D, F * D,  F * D,   D * F};
    return sizes[field];
  }
  // Weights (seed 0) or starting gradients (seed 100; non-zero, so += is checked) for every field.
  std::vector<std::vector<float>> tensors(uint64_t seed) const {
    std::vector<std::vector<float>> t(kNumFields);
    for (size_t f = 0; f < kNumFields; ++f) {
      const bool gain = f == 0 || f == 5 || f == 6 || f == 7;
      const float a = gain ? 1.0f : 0.3f / std::sqrt(float(d.D));
      t[f] = random_vec(numel(f), seed + f, gain ? 0.5f : -a, gain ? 1.5f : a);
    }
    return t;
  }
  static LayerTensors view(std::vector<std::vector<float>>& t, const std::vector<int>& frozen = {}) {
    LayerTensors L{};
    for (size_t f = 0; f < kNumFields; ++f) L.*kFields[f] = t[f].empty() ? nullptr : t[f].data();
    for (int f : frozen) L.*kFields[f] = nullptr;
    return L;
  }

  struct Result {
    std::vector<float> dx;
    std::vector<std::vector<float>> grads;
  };
  // Both blocks forward then backward (FFN first, as training runs them), with `frozen` fields'
  // gradient pointers null.
  Result run(const std::vector<int>& frozen) {
    auto w = tensors(0);
    Result r{std::vector<float>(N() * d.D), tensors(100)};
    const LayerTensors W = view(w), G = view(r.grads, frozen);
    const size_t ND = N() * d.D;
    const bool flash = be->attention_flash(AttnShape{d.B, d.T, d.Hq, d.Hkv, d.hd});
    std::vector<std::vector<float>> bufs;  // moving the outer vector keeps each buffer in place
    auto take = [&bufs](size_t n) -> float* { return n ? bufs.emplace_back(n, 0.0f).data() : nullptr; };
    AttentionSaved as = plan_attention_saved(take, d, true, flash);
    FfnSaved fs = plan_ffn_saved(take, d);
    AttentionScratch ak = plan_attention_scratch(take, d, flash);
    FfnScratch fk = plan_ffn_scratch(take, d);
    const std::vector<float> x = random_vec(ND, 7), dout = random_vec(ND, 8);
    std::vector<float> mid(ND), out(ND), dmid(ND);
    be->attention_block_fwd(d, W, x.data(), mid.data(), as);
    be->ffn_block_fwd(d, W, mid.data(), out.data(), fs);
    be->ffn_block_bwd(d, W, G, mid.data(), fs, dout.data(), dmid.data(), fk);
    be->attention_block_bwd(d, W, G, x.data(), as, dmid.data(), r.dx.data(), ak);
    return r;
  }

  std::unique_ptr<Backend> be;
  BlockDims d{};
};

TEST_P(StagesWithFrozenWeights, SkipOnlyTheFrozenGradients) {
  const Result all = run({});
  for (const auto& frozen : kFrozenSets) {
    const Result some = run(frozen);
    EXPECT_TRUE(same_bits(be->name() + " dx", some.dx, all.dx));
    const auto untouched = tensors(100);
    for (size_t f = 0; f < kNumFields; ++f) {
      const bool is_frozen = std::find(frozen.begin(), frozen.end(), int(f)) != frozen.end();
      // A frozen field's buffer was never handed to the stage, so it still holds its start.
      EXPECT_TRUE(same_bits(be->name() + " gradient " + kFieldNames[f], some.grads[f],
                            is_frozen ? untouched[f] : all.grads[f]));
    }
  }
}

// The classifier stage with a frozen classifier: the same dxf, no dW.
TEST_P(StagesWithFrozenWeights, ClassifierWithoutWeightGradient) {
  const int n = d.N(), D = d.D, V = 37;
  const std::vector<float> xf = random_vec(size_t(n) * D, 21), W = random_vec(size_t(V) * D, 22, -0.2f, 0.2f);
  const std::vector<int32_t> targets = random_tokens(size_t(n), V, 23);
  const size_t rows = size_t(n);
  std::vector<float> dxf[2], lse(rows), losses(rows), dW(size_t(V) * D, 0.0f);
  for (int k = 0; k < 2; ++k) {
    std::vector<float> scratch(be->classifier_scratch_floats(n, V));
    dxf[k].assign(size_t(n) * D, 0.0f);
    be->classifier_loss_fwd(xf.data(), W.data(), targets.data(), losses.data(), lse.data(), scratch.data(), n, D, V);
    be->classifier_loss_bwd(xf.data(), W.data(), targets.data(), lse.data(), 0.5f, dxf[k].data(),
                            k == 0 ? dW.data() : nullptr, scratch.data(), n, D, V);
  }
  EXPECT_TRUE(same_bits(be->name() + " dxf", dxf[1], dxf[0]));
}

// RMSNorm's backward op with a frozen gain: the same dx.
TEST_P(StagesWithFrozenWeights, RmsnormWithoutGainGradient) {
  const int n = d.N(), D = d.D;
  const std::vector<float> x = random_vec(size_t(n) * D, 31), w = random_vec(size_t(D), 32, 0.5f, 1.5f),
                           dy = random_vec(size_t(n) * D, 33);
  const size_t rows = size_t(n);
  std::vector<float> y(rows * D), rstd(rows), dx[2], dw(size_t(D), 0.0f);
  be->rmsnorm_fwd(x.data(), w.data(), y.data(), rstd.data(), n, D, 1e-5f);
  for (int k = 0; k < 2; ++k) {
    dx[k].assign(size_t(n) * D, 0.25f);
    be->rmsnorm_bwd(dy.data(), x.data(), w.data(), rstd.data(), dx[k].data(), k == 0 ? dw.data() : nullptr, n, D);
  }
  EXPECT_TRUE(same_bits(be->name() + " dx", dx[1], dx[0]));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, StagesWithFrozenWeights,
                         ::testing::Combine(::testing::ValuesIn(ref_and_tested_backends()), ::testing::ValuesIn(kCases)),
                         backend_case_name<FrozenCase>);

}  // namespace
}  // namespace anetrain::test
