// Frozen weights on the ane backends: a null gradient pointer skips that weight's gradient, and
// the stage's dx and every other gradient are bit for bit what they are with all present — on the
// programs (ane-sim, at a known layer with staged weights) and when a program is rejected midway
// through a backward and the stage runs as the host's, after QK-norm's gains have accumulated
// (the undo must restore only the gains that have gradients).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backends/ane/ane_backend.h"
#include "backends/ane/fake/fake_api.h"
#include "backends/ane/runtime/runtime.h"
#include "contract/registry.h"
#include "../op_test_util.h"

namespace anetrain::test {
namespace {

using Field = float* LayerTensors::*;
constexpr Field kFields[] = {&LayerTensors::attn_norm, &LayerTensors::wq,     &LayerTensors::wk,
                             &LayerTensors::wv,        &LayerTensors::wo,     &LayerTensors::q_norm,
                             &LayerTensors::k_norm,    &LayerTensors::ffn_norm, &LayerTensors::w_gate,
                             &LayerTensors::w_up,      &LayerTensors::w_down};
constexpr const char* kNames[] = {"attn_norm", "wq", "wk", "wv", "wo", "q_norm", "k_norm", "ffn_norm",
                                  "w_gate",    "w_up", "w_down"};
constexpr int kFieldCount = int(sizeof(kFields) / sizeof(kFields[0]));

// A small Qwen3-shaped layer (GQA 4/2, QK-norm, half RoPE), two sequences of 32 tokens, layer 0.
BlockDims dims() { return BlockDims{2, 32, 64, 4, 2, 24, 96, 1e-6f, 0.9f, 1e6f, RopeStyle::half, true, 0}; }

size_t numel(const BlockDims& d, int field) {
  const size_t D = d.D, F = d.F, qd = size_t(d.Hq) * d.hd, kvd = size_t(d.Hkv) * d.hd, hd = d.hd;
  const size_t sizes[] = {D, qd * D, kvd * D, kvd * D, D * qd, hd, hd, D, F * D, F * D, D * F};
  return sizes[field];
}

struct Result {
  std::vector<float> dx;
  std::vector<std::vector<float>> grads;  // by field; a frozen field keeps its starting values
};

// Both blocks forward and backward (FFN first, as training runs them) with the fields in
// `frozen` given null gradient pointers. The weights live in one arena so that the backend stages
// them per layer and weight version, as in training.
Result run(Backend& be, const std::vector<int>& frozen) {
  const BlockDims d = dims();
  std::vector<size_t> offset(kFieldCount + 1, 0);
  for (int f = 0; f < kFieldCount; ++f) offset[f + 1] = offset[f] + numel(d, f);
  std::vector<float> arena(offset.back());
  for (int f = 0; f < kFieldCount; ++f) {
    const bool gain = f == 0 || f == 5 || f == 6 || f == 7;
    const float a = 0.4f / std::sqrt(float(d.D));
    const auto v = random_vec(numel(d, f), 1 + f, gain ? 0.5f : -a, gain ? 1.5f : a);
    std::copy(v.begin(), v.end(), arena.begin() + std::ptrdiff_t(offset[f]));
  }
  be.sync_weights(WeightsView{arena.data(), arena.size(), 1});
  Result r{std::vector<float>(size_t(d.N()) * d.D), {}};
  LayerTensors W{}, G{};
  for (int f = 0; f < kFieldCount; ++f) {
    W.*kFields[f] = arena.data() + offset[f];
    r.grads.push_back(random_vec(numel(d, f), 100 + f));  // non-zero: gradients accumulate
    const bool is_frozen = std::find(frozen.begin(), frozen.end(), f) != frozen.end();
    G.*kFields[f] = is_frozen ? nullptr : r.grads.back().data();
  }
  std::vector<std::vector<float>> bufs;
  auto take = [&bufs](size_t n) -> float* { return n ? bufs.emplace_back(n, 0.0f).data() : nullptr; };
  const bool flash = be.attention_flash(AttnShape{d.B, d.T, d.Hq, d.Hkv, d.hd});
  AttentionSaved as = plan_attention_saved(take, d, true, flash);
  FfnSaved fs = plan_ffn_saved(take, d);
  const size_t N = size_t(d.N()), ND = N * d.D, NF = N * d.F, qd = size_t(d.Hq) * d.hd, kvd = size_t(d.Hkv) * d.hd;
  AttentionScratch ak{take(N * qd), take(N * qd),  take(N * kvd), take(N * kvd), take(N * qd),
                      take(N * kvd), take(flash ? 0 : size_t(d.B) * d.Hq * d.T * d.T), take(ND), take(ND), nullptr};
  FfnScratch fk{take(NF), take(NF), take(NF), take(ND), take(ND), nullptr};
  const std::vector<float> x = random_vec(ND, 7), dout = random_vec(ND, 8);
  std::vector<float> mid(ND), out(ND), dmid(ND);
  be.attention_block_fwd(d, W, x.data(), mid.data(), as);
  be.ffn_block_fwd(d, W, mid.data(), out.data(), fs);
  be.ffn_block_bwd(d, W, G, mid.data(), fs, dout.data(), dmid.data(), fk);
  be.attention_block_bwd(d, W, G, x.data(), as, dmid.data(), r.dx.data(), ak);
  return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The kernels whose stage fell back to the host during the run.
std::set<std::string> fallen_back(Backend& be) {
  std::set<std::string> kernels;
  for (const ProgramFallback& f : take_fallbacks(be.caps())) kernels.insert(f.kernel);
  return kernels;
}

// `make` gives a fresh backend per run (a fallback changes a backend's later calls); each run
// falls back in exactly `fallbacks`.
void expect_frozen_skipped(const std::function<std::unique_ptr<Backend>()>& make, const std::vector<int>& frozen,
                           const std::set<std::string>& fallbacks) {
  auto be_all = make(), be_some = make();
  const Result all = run(*be_all, {});
  const Result some = run(*be_some, frozen);
  EXPECT_EQ(fallen_back(*be_all), fallbacks);
  EXPECT_EQ(fallen_back(*be_some), fallbacks);
  EXPECT_TRUE(same_bits(some.dx, all.dx)) << "dx";
  const BlockDims d = dims();
  for (int f = 0; f < kFieldCount; ++f) {
    const bool is_frozen = std::find(frozen.begin(), frozen.end(), f) != frozen.end();
    const std::vector<float> untouched = random_vec(numel(d, f), 100 + f);
    EXPECT_TRUE(same_bits(some.grads[f], is_frozen ? untouched : all.grads[f]))
        << kNames[f] << (is_frozen ? " (frozen) was written" : " differs");
  }
}

// The matrices of both blocks, the gains, and a mix (q's gain frozen, k's not: the QK-norm undo).
const std::vector<std::vector<int>> kFrozenSets = {{1, 2, 3, 4, 8, 9, 10}, {0, 5, 6, 7}, {2, 5, 7, 9}};

TEST(AneFrozenWeights, ProgramsSkipOnlyTheFrozenGradients) {
  for (const auto& frozen : kFrozenSets) expect_frozen_skipped([] { return make_backend("ane-sim"); }, frozen, {});
}

TEST(AneFrozenWeights, AStageRejectedMidBackwardRunsAsTheHostsWithTheSameGradients) {
  // The dual products are the last programs of both backward stages: by then QK-norm's gains
  // have accumulated, and the stage is redone on the host.
  auto make = [] {
    auto be = std::make_unique<AneBackend>(
        "ane-fake", std::make_unique<ane::AneRuntime>(ane::make_fake_api(ane::FakeOptions::parse("fail=evaluate,program=dual_linear_*"))),
        make_backend("cpu"));
    return std::unique_ptr<Backend>(std::move(be));
  };
  for (const auto& frozen : kFrozenSets) expect_frozen_skipped(make, frozen, {"gate_up_bwd", "kv_bwd"});
}

}  // namespace
}  // namespace anetrain::test
