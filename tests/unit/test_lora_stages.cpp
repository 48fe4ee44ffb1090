// LoRA adapters in the stages, on every backend: a block with adapters (W·x + s·(x·Aᵀ)·Bᵀ on each
// projection, the base frozen) must compute what the same block computes with the merged weights
// W + s·B·A — the same outputs and dx — and its adapter gradients must be the chain rule through
// the merge: dA = s·Bᵀ·dW and dBᵀ = s·A·dWᵀ, where dW is the merged block's weight gradient.
// Each comparison is relative to the largest value of the reference tensor, at the backend's
// stage tolerance (1e-4 for fp32 backends; bf16 and fp16 ones state theirs), never looser than 2e-5.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "contract/backend.h"
#include "contract/registry.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

struct LoraCase {
  const char* name;
  int B, T, D, F, Hq, Hkv, hd, r;
  bool qk_norm;
  RopeStyle rope;
};
void PrintTo(const LoraCase& c, std::ostream* os) { *os << c.name; }

const LoraCase kCases[] = {
    {"gqa_interleaved_r4", 2, 5, 32, 48, 4, 2, 8, 4, false, RopeStyle::interleaved},
    {"gqa_half_qknorm_r3", 1, 7, 32, 40, 4, 2, 8, 3, true, RopeStyle::half},
};

using Field = float* LayerTensors::*;
using AdapterField = Adapter LayerAdapters::*;
// The seven projections, their adapter slot and (out, in) in terms of the block's dimensions.
struct Projection {
  Field w;
  AdapterField a;
  const char* name;
};
const Projection kProjections[] = {{&LayerTensors::wq, &LayerAdapters::wq, "q"},
                                   {&LayerTensors::wk, &LayerAdapters::wk, "k"},
                                   {&LayerTensors::wv, &LayerAdapters::wv, "v"},
                                   {&LayerTensors::wo, &LayerAdapters::wo, "o"},
                                   {&LayerTensors::w_gate, &LayerAdapters::w_gate, "gate"},
                                   {&LayerTensors::w_up, &LayerAdapters::w_up, "up"},
                                   {&LayerTensors::w_down, &LayerAdapters::w_down, "down"}};

::testing::AssertionResult close_rel(const std::string& what, const std::vector<float>& got,
                                     const std::vector<double>& want, double tol) {
  double scale = 0, err = 0;
  size_t worst = 0;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(double(got[i]) - want[i]);
    if (!(e <= err)) err = e, worst = i;  // NaN in got becomes the worst
  }
  if (scale > 0 && err <= tol * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": max|err| " << err << " at " << worst << " vs scale " << scale
                                       << " (tol " << tol << ")";
}
std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

class LoraStages : public ::testing::TestWithParam<std::tuple<std::string, LoraCase>> {
 protected:
  void SetUp() override {
    be = make_backend(std::get<0>(GetParam()));
    const LoraCase& c = std::get<1>(GetParam());
    d = BlockDims{c.B, c.T, c.D, c.Hq, c.Hkv, c.hd, c.F, 1e-5f, 0.8f, 1e4f, c.rope, c.qk_norm};
    tol = std::max(2e-5, be->caps().numerics.stage_rtol);
  }
  std::pair<int, int> shape(const Projection& p) const {  // (out, in)
    const int qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;
    if (p.w == &LayerTensors::wq) return {qd, d.D};
    if (p.w == &LayerTensors::wk || p.w == &LayerTensors::wv) return {kvd, d.D};
    if (p.w == &LayerTensors::wo) return {d.D, qd};
    if (p.w == &LayerTensors::w_down) return {d.D, d.F};
    return {d.F, d.D};
  }

  struct Run {
    std::vector<float> mid, out, dx;
    std::vector<std::vector<float>> dW, dA, dBt;  // per projection
  };
  // Both blocks forward, then backward (FFN first). With `adapters`, the weights are `w` and the
  // adapters train (the base frozen); without, the weights are `w` and every matrix trains.
  Run run(std::vector<std::vector<float>>& w, std::vector<float>& gains, std::vector<std::vector<float>>* a,
          std::vector<std::vector<float>>* bt, int rank, float scale) {
    d.lora_rank = a ? rank : 0;
    const size_t N = size_t(d.N()), ND = N * d.D;
    Run r;
    r.dW.resize(7);
    r.dA.resize(7);
    r.dBt.resize(7);
    LayerTensors W{}, G{};
    W.attn_norm = gains.data();
    W.ffn_norm = gains.data() + d.D;
    W.q_norm = d.qk_norm ? gains.data() + 2 * d.D : nullptr;
    W.k_norm = d.qk_norm ? gains.data() + 2 * d.D + d.hd : nullptr;
    for (int p = 0; p < 7; ++p) {
      const auto [out, in] = shape(kProjections[p]);
      W.*kProjections[p].w = w[p].data();
      if (a) {
        r.dA[p].assign(size_t(rank) * in, 0.0f);
        r.dBt[p].assign(size_t(rank) * out, 0.0f);
        W.lora.*kProjections[p].a = Adapter{(*a)[p].data(), (*bt)[p].data()};
        G.lora.*kProjections[p].a = Adapter{r.dA[p].data(), r.dBt[p].data()};
      } else {
        r.dW[p].assign(size_t(out) * in, 0.0f);
        G.*kProjections[p].w = r.dW[p].data();
      }
    }
    if (a) W.lora.rank = G.lora.rank = rank, W.lora.scale = G.lora.scale = scale;
    const bool flash = be->attention_flash(AttnShape{d.B, d.T, d.Hq, d.Hkv, d.hd});
    std::vector<std::vector<float>> bufs;
    auto take = [&bufs](size_t n) -> float* { return n ? bufs.emplace_back(n, 0.0f).data() : nullptr; };
    AttentionSaved as = plan_attention_saved(take, d, true, flash);
    FfnSaved fs = plan_ffn_saved(take, d);
    AttentionScratch ak = plan_attention_scratch(take, d, flash);
    FfnScratch fk = plan_ffn_scratch(take, d);
    const std::vector<float> x = random_vec(ND, 7), dout = random_vec(ND, 8);
    std::vector<float> dmid(ND);
    r.mid.assign(ND, 0.0f);
    r.out.assign(ND, 0.0f);
    r.dx.assign(ND, 0.0f);
    be->attention_block_fwd(d, W, x.data(), r.mid.data(), as);
    be->ffn_block_fwd(d, W, r.mid.data(), r.out.data(), fs);
    be->ffn_block_bwd(d, W, G, r.mid.data(), fs, dout.data(), dmid.data(), fk);
    be->attention_block_bwd(d, W, G, x.data(), as, dmid.data(), r.dx.data(), ak);
    return r;
  }

  std::unique_ptr<Backend> be;
  BlockDims d{};
  double tol = 1e-4;
};

TEST_P(LoraStages, AdaptedBlockIsTheMergedBlockAndItsGradientsFollowTheChainRule) {
  const int rank = std::get<1>(GetParam()).r;
  const float scale = 2.0f / float(rank);
  std::vector<std::vector<float>> w(7), a(7), bt(7), merged(7);
  for (int p = 0; p < 7; ++p) {
    const auto [out, in] = shape(kProjections[p]);
    const float lim = 0.5f / std::sqrt(float(in));
    w[p] = random_vec(size_t(out) * in, 10 + p, -lim, lim);
    a[p] = random_vec(size_t(rank) * in, 20 + p, -1.0f / std::sqrt(float(in)), 1.0f / std::sqrt(float(in)));
    bt[p] = random_vec(size_t(rank) * out, 30 + p, -0.1f, 0.1f);
    merged[p] = w[p];
    for (int o = 0; o < out; ++o)
      for (int i = 0; i < in; ++i) {
        double s = 0;
        for (int k = 0; k < rank; ++k) s += double(bt[p][size_t(k) * out + o]) * a[p][size_t(k) * in + i];
        merged[p][size_t(o) * in + i] = float(w[p][size_t(o) * in + i] + scale * s);
      }
  }
  std::vector<float> gains = random_vec(size_t(2 * d.D + 2 * d.hd), 40, 0.5f, 1.5f);
  const Run adapted = run(w, gains, &a, &bt, rank, scale);
  const Run plain = run(merged, gains, nullptr, nullptr, rank, scale);
  const std::string who = be->name() + " ";
  EXPECT_TRUE(close_rel(who + "attention output", adapted.mid, widen(plain.mid), tol));
  EXPECT_TRUE(close_rel(who + "block output", adapted.out, widen(plain.out), tol));
  EXPECT_TRUE(close_rel(who + "dx", adapted.dx, widen(plain.dx), tol));
  for (int p = 0; p < 7; ++p) {
    const auto [out, in] = shape(kProjections[p]);
    std::vector<double> want_dA(size_t(rank) * in, 0.0), want_dBt(size_t(rank) * out, 0.0);
    for (int k = 0; k < rank; ++k)
      for (int o = 0; o < out; ++o) {
        const double b = scale * double(bt[p][size_t(k) * out + o]);
        for (int i = 0; i < in; ++i) {
          const double g = plain.dW[p][size_t(o) * in + i];
          want_dA[size_t(k) * in + i] += b * g;                                        // s·Bᵀ·dW
          want_dBt[size_t(k) * out + o] += scale * double(a[p][size_t(k) * in + i]) * g;  // s·A·dWᵀ
        }
      }
    EXPECT_TRUE(close_rel(who + "dA of " + kProjections[p].name, adapted.dA[p], want_dA, tol));
    EXPECT_TRUE(close_rel(who + "dBt of " + kProjections[p].name, adapted.dBt[p], want_dBt, tol));
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, LoraStages,
                         ::testing::Combine(::testing::ValuesIn(ref_and_tested_backends()), ::testing::ValuesIn(kCases)),
                         backend_case_name<LoraCase>);

}  // namespace
}  // namespace anetrain::test
