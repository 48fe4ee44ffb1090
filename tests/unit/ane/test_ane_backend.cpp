// The ane-sim backend's stages at the real layer shapes of stories110m and qwen3-0.6b (B = 1,
// T = 256), against `ref`'s default composition; and the property that keeps a 28-layer model
// inside the compile budget: the programs depend on the layer's shape, never on which layer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "backends/ane/layer_programs.h"
#include "backends/ane/ane_backend.h"
#include "mil/sim/compiler.h"
#include "contract/registry.h"
#include "gen/decoder.h"
#include "model/config.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"
#include "train/optimizer.h"
#include "../op_test_util.h"

namespace anetrain::test {
namespace {

// One layer's weights, gradients, saved buffers and scratch, all in one map of named vectors.
struct Layer {
  std::map<std::string, std::vector<float>> t;
  float* p(const std::string& n, size_t size, uint64_t seed = 0, float a = 0) {
    auto& v = t[n];
    v = a > 0 ? random_vec(size, seed, -a, a) : std::vector<float>(size, 0.0f);
    return v.data();
  }
};

struct Result {
  std::map<std::string, std::vector<float>> out;
};

// fwd + bwd of both stages; returns out/dx of each stage and every parameter gradient.
Result run_layer(Backend& be, const BlockDims& d, uint64_t seed, bool use_default) {
  const size_t N = size_t(d.N()), D = d.D, F = d.F, qd = size_t(d.Hq) * d.hd, kvd = size_t(d.Hkv) * d.hd;
  const size_t P = size_t(d.B) * d.Hq * d.T * d.T;
  Layer L;
  const float a = 1.0f / std::sqrt(float(D)), ao = 1.0f / std::sqrt(float(qd)), af = 1.0f / std::sqrt(float(F));
  LayerTensors W{L.p("attn_norm", D, seed + 1, 1.5f), L.p("wq", qd * D, seed + 2, a), L.p("wk", kvd * D, seed + 3, a),
                 L.p("wv", kvd * D, seed + 4, a), L.p("wo", D * qd, seed + 5, ao),
                 d.qk_norm ? L.p("q_norm", d.hd, seed + 6, 1.5f) : nullptr,
                 d.qk_norm ? L.p("k_norm", d.hd, seed + 7, 1.5f) : nullptr, L.p("ffn_norm", D, seed + 8, 1.5f),
                 L.p("w_gate", F * D, seed + 9, a), L.p("w_up", F * D, seed + 10, a), L.p("w_down", D * F, seed + 11, af), LayerAdapters{}};
  std::vector<std::string> names = {"attn_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w_gate", "w_up", "w_down"};
  if (d.qk_norm) names.insert(names.end(), {"q_norm", "k_norm"});
  LayerTensors G{};
  std::map<std::string, float**> gslot = {{"attn_norm", &G.attn_norm}, {"wq", &G.wq}, {"wk", &G.wk}, {"wv", &G.wv},
                                          {"wo", &G.wo}, {"q_norm", &G.q_norm}, {"k_norm", &G.k_norm},
                                          {"ffn_norm", &G.ffn_norm}, {"w_gate", &G.w_gate}, {"w_up", &G.w_up},
                                          {"w_down", &G.w_down}};
  for (const auto& n : names) *gslot[n] = L.p("g_" + n, L.t[n].size());
  const size_t qn = d.qk_norm ? 1 : 0;
  AttentionSaved as{L.p("xn", N * D), L.p("rstd", N), L.p("q_raw", qn * N * qd), L.p("k_raw", qn * N * kvd),
                    L.p("q_rstd", qn * N * d.Hq), L.p("k_rstd", qn * N * d.Hkv), L.p("q", N * qd), L.p("k", N * kvd),
                    L.p("v", N * kvd), L.p("probs", P), L.p("attn", N * qd), L.p("o", N * D), nullptr, nullptr};
  AttentionScratch ak{L.p("dattn", N * qd), L.p("dq", N * qd), L.p("dk", N * kvd), L.p("dv", N * kvd),
                      L.p("dq_raw", N * qd), L.p("dk_raw", N * kvd), L.p("dprobs", P), L.p("dxn", N * D), L.p("dres", N * D), nullptr};
  FfnSaved fs{L.p("fxn", N * D), L.p("frstd", N), L.p("g", N * F), L.p("u", N * F), L.p("h", N * F), L.p("f", N * D), nullptr};
  FfnScratch fk{L.p("dh", N * F), L.p("dg", N * F), L.p("du", N * F), L.p("fdxn", N * D), L.p("fdres", N * D), nullptr};
  std::vector<float> x = random_vec(N * D, seed + 20), dout = random_vec(N * D, seed + 21);
  Result r;
  auto& o = r.out;
  o["attn_out"].resize(N * D), o["attn_dx"].resize(N * D), o["ffn_out"].resize(N * D), o["ffn_dx"].resize(N * D);
  if (use_default) {
    be.Backend::attention_block_fwd(d, W, x.data(), o["attn_out"].data(), as);
    be.Backend::attention_block_bwd(d, W, G, x.data(), as, dout.data(), o["attn_dx"].data(), ak);
    be.Backend::ffn_block_fwd(d, W, x.data(), o["ffn_out"].data(), fs);
    be.Backend::ffn_block_bwd(d, W, G, x.data(), fs, dout.data(), o["ffn_dx"].data(), fk);
  } else {
    be.attention_block_fwd(d, W, x.data(), o["attn_out"].data(), as);
    be.attention_block_bwd(d, W, G, x.data(), as, dout.data(), o["attn_dx"].data(), ak);
    be.ffn_block_fwd(d, W, x.data(), o["ffn_out"].data(), fs);
    be.ffn_block_bwd(d, W, G, x.data(), fs, dout.data(), o["ffn_dx"].data(), fk);
  }
  for (const auto& n : names) o["grad " + n] = L.t["g_" + n];
  return r;
}

// Relative to each tensor's own scale (no floor at 1, unlike all_close): small gradients count.
void expect_close(const Result& got, const Result& want, double tol, const std::string& tag) {
  for (const auto& [name, w] : want.out) {
    const auto& g = got.out.at(name);
    double scale = 0, worst = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      scale = std::max(scale, double(std::fabs(w[i])));
      worst = std::max(worst, std::isfinite(g[i]) ? double(std::fabs(g[i] - w[i])) : INFINITY);
    }
    EXPECT_LE(worst, tol * scale) << tag << " " << name << ": max error " << worst << " vs scale " << scale;
  }
}

BlockDims stories110m(int T) { return BlockDims{1, T, 768, 12, 12, 64, 2048, 1e-5f, 1.0f, 1e4f, RopeStyle::interleaved, false}; }
BlockDims qwen3_06b(int T) { return BlockDims{1, T, 1024, 16, 8, 128, 3072, 1e-6f, 1.0f, 1e6f, RopeStyle::half, true}; }

TEST(AneSimBackend, Stories110mLayerAtT256MatchesRef) {
  auto ane = make_backend("ane-sim"), ref = make_backend("ref");
  BlockDims d = stories110m(256);
  expect_close(run_layer(*ane, d, 1, false), run_layer(*ref, d, 1, true), ane->caps().numerics.stage_rtol, "stories110m");
}

TEST(AneSimBackend, Qwen3LayerAtT256MatchesRef) {
  auto ane = make_backend("ane-sim"), ref = make_backend("ref");
  BlockDims d = qwen3_06b(256);
  expect_close(run_layer(*ane, d, 2, false), run_layer(*ref, d, 2, true), ane->caps().numerics.stage_rtol, "qwen3-0.6b");
}

TEST(AneSimBackend, InterleavedRopeWithGqaAndQkNormMatchesRef) {
  // The combination the two real models do not cover: interleaved pairs with GQA 4 and QK-norm.
  auto ane = make_backend("ane-sim"), ref = make_backend("ref");
  BlockDims d{2, 32, 96, 8, 2, 16, 80, 1e-5f, 0.5f, 5e5f, RopeStyle::interleaved, true};
  expect_close(run_layer(*ane, d, 3, false), run_layer(*ref, d, 3, true), ane->caps().numerics.stage_rtol, "gqa4");
}

TEST(AneSimBackend, UnalignedShapesArePaddedInsideThePrograms) {
  // Every size off the programs' alignment: T = 40 (tokens padded to 64), D = 72 and F = 100
  // (inner dimensions padded to 96 and 128), hd = 12 (heads padded to 32 wide), GQA 3, QK-norm.
  auto ane = make_backend("ane-sim"), ref = make_backend("ref");
  BlockDims d{2, 40, 72, 6, 2, 12, 100, 1e-5f, 1.0f, 1e4f, RopeStyle::half, true};
  expect_close(run_layer(*ane, d, 4, false), run_layer(*ref, d, 4, true), ane->caps().numerics.stage_rtol, "unaligned");
  BlockDims i = d;
  i.rope = RopeStyle::interleaved;
  i.qk_norm = false;
  expect_close(run_layer(*ane, i, 5, false), run_layer(*ref, i, 5, true), ane->caps().numerics.stage_rtol, "unaligned-il");
  // An FFN too wide for one input (T + 3F > 16384 columns): gate, up and down as three products.
  BlockDims wide{1, 40, 64, 2, 2, 32, 5500, 1e-5f, 1.0f, 1e4f, RopeStyle::half, false};
  ASSERT_FALSE(ane::ffn_fused(ane::LayerShape::from(wide)));
  expect_close(run_layer(*ane, wide, 6, false), run_layer(*ref, wide, 6, true), ane->caps().numerics.stage_rtol, "wide-ffn");
}

TEST(AneSimBackend, CompilesExactlyItsLayerPlan) {
  // The plan (ane/kernels/layer_programs.h) is what `ane dump` writes and the strict grid checks:
  // a layer's forward and backward must compile exactly its programs, fused FFN or not.
  for (BlockDims d : {stories110m(64), BlockDims{1, 256, 256, 4, 2, 64, 5600, 1e-5f, 1.0f, 1e4f, RopeStyle::half, true}}) {
    auto be = make_backend("ane-sim");
    auto& ane = dynamic_cast<AneBackend&>(*be);
    run_layer(ane, d, 7, false);
    std::set<std::string> compiled, planned;
    for (const auto& k : ane.program_keys()) compiled.insert(k);
    for (const auto& p : ane::training_programs(ane::LayerShape::from(d))) planned.insert(p.key);
    EXPECT_EQ(compiled, planned) << "F = " << d.F;
  }
}

TEST(AneSimBackend, ProgramCountDependsOnShapeNotOnLayer) {
  // A 28-layer Qwen3 compiles what one layer compiles: every layer runs the same programs with
  // its own weights staged in the input.
  auto be = make_backend("ane-sim");
  auto& ane = dynamic_cast<AneBackend&>(*be);
  const int before = sim::Compiler::process().compiles();
  BlockDims d = qwen3_06b(16);
  run_layer(ane, d, 10, false);
  const int one_layer = ane.programs_compiled();
  for (uint64_t layer = 1; layer < 3; ++layer) run_layer(ane, d, 10 + 100 * layer, false);
  EXPECT_EQ(ane.programs_compiled(), one_layer);
  EXPECT_LE(one_layer, 12);
  EXPECT_EQ(sim::Compiler::process().compiles() - before, one_layer);
  // q/k/v product, attention fwd/bwd, FFN fwd, Wo / Wq-backward (one shape), Woᵀ, W_downᵀ,
  // W_gate/upᵀ, Wk/Wvᵀ.
  EXPECT_EQ(one_layer, 9);
}

}  // namespace
}  // namespace anetrain::test

namespace anetrain::test {
namespace {

TEST(AneSimBackend, WeightsAreStagedOncePerOptimizerStep) {
  // The seed wrote each layer's weight surfaces once per optimizer step and only activations per
  // micro-step. Three micro-steps, two optimizer steps: 8 weight-bearing kernels per layer are
  // staged once per step, and the restaged weights are the updated ones (a fresh backend, which
  // stages everything anew, computes the identical loss).
  Model m(preset_config("stories260k"));
  init_random(m, 5);
  Workspace ws(m.cfg, 2, 16);
  for (size_t i = 0; i < ws.inputs.size(); ++i) {
    ws.inputs[i] = int32_t((i * 37 + 11) % size_t(m.cfg.vocab_size));
    ws.targets[i] = int32_t((i * 53 + 7) % size_t(m.cfg.vocab_size));
  }
  AdamWConfig oc;
  oc.lr = 1e-2;
  oc.warmup = 0;
  AdamW opt(m, oc);
  auto be = make_backend("ane-sim");
  auto& ane = dynamic_cast<AneBackend&>(*be);
  const int per_step = 8 * m.cfg.n_layers;
  for (int step = 1; step <= 2; ++step) {
    m.zero_grads();
    for (int micro = 0; micro < 3; ++micro) {
      forward(ane, m, ws);
      backward(ane, m, ws, 1.0f / 3);
    }
    EXPECT_EQ(ane.weight_stagings(), step * per_step) << "step " << step;
    opt.step(m);
  }
  const double cached = forward(ane, m, ws);
  auto fresh = make_backend("ane-sim");
  EXPECT_EQ(forward(*fresh, m, ws), cached);
  EXPECT_EQ(ane.weight_stagings(), 2 * per_step + 3 * m.cfg.n_layers);  // a forward stages its 3 kernels
}

}  // namespace
}  // namespace anetrain::test

namespace anetrain::test {
namespace {

TEST(AneSimBackend, GenerationRunsBakedProgramsCompiledOncePerLayer) {
  // A tiny true Qwen3 (GQA 4/2, head_dim ≠ D/H, QK-norm, half RoPE at θ 1e6): a 5-token prompt,
  // then 24 tokens one at a time. ane-sim's logits follow the cpu backend's within fp16 noise and
  // pick the same tokens; one-token steps run three baked programs per layer, compiled once, up front.
  ModelConfig c;
  c.arch = "qwen3";
  c.dim = 64, c.n_layers = 3, c.hidden_dim = 96, c.vocab_size = 97, c.max_seq_len = 64;
  c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 24, c.qk_norm = true;
  c.rope_style = RopeStyle::half, c.rope_theta = 1e6, c.norm_eps = 1e-6;
  c.validate();
  Model m(c);
  init_random(m, 9);
  auto cpu = make_backend("cpu"), be = make_backend("ane-sim");
  auto& ane = dynamic_cast<AneBackend&>(*be);
  Decoder dc(*cpu, m, 64), da(ane, m, 64);
  const int32_t prompt[5] = {1, 17, 42, 5, 88};
  const float* lc = dc.feed(prompt, 5);
  const float* la = da.feed(prompt, 5);
  const int after_prompt = ane.programs_compiled();
  int agree = 0;
  for (int step = 0; step < 25; ++step) {
    double scale = 0, worst = 0;
    for (int v = 0; v < c.vocab_size; ++v) {
      scale = std::max(scale, double(std::fabs(lc[v])));
      worst = std::max(worst, double(std::fabs(la[v] - lc[v])));
    }
    EXPECT_LE(worst, 2e-2 * scale) << "step " << step;
    const int32_t next = int32_t(std::max_element(lc, lc + c.vocab_size) - lc);
    agree += next == int32_t(std::max_element(la, la + c.vocab_size) - la);
    if (step == 24) break;
    lc = dc.feed(next);
    la = da.feed(next);
  }
  EXPECT_GE(agree, 24);  // fp16 may flip a near-tie; more than one would be a bug
  // Every layer's three one-token programs were compiled before the first token (so a rejection
  // is known before any output), and nothing was compiled while generating.
  EXPECT_GE(after_prompt, 3 * c.n_layers);
  EXPECT_EQ(ane.programs_compiled(), after_prompt);
  bool saw_baked = false;
  for (const KernelTiming& t : ane.take_kernel_timings())
    if (t.name == "decode_qkv") saw_baked = t.calls == 24 * c.n_layers;
  EXPECT_TRUE(saw_baked);
}

}  // namespace
}  // namespace anetrain::test

namespace anetrain::test {
namespace {

TEST(AneSimBackend, Qwen3With28LayersCompilesNinePrograms) {
  // qwen3-0.6b's true shape, all 28 layers (vocabulary cut to 256 to keep the embedding small):
  // one forward and backward compile the same nine programs a single layer does.
  ModelConfig c = preset_config("qwen3-0.6b");
  ASSERT_EQ(c.n_layers, 28);
  c.vocab_size = 256;
  Model m(c);
  init_random(m, 3);
  Workspace ws(m.cfg, 1, 8);
  for (size_t i = 0; i < ws.inputs.size(); ++i) ws.inputs[i] = int32_t(i * 31 % 256), ws.targets[i] = int32_t(i * 7 % 256);
  auto be = make_backend("ane-sim");
  auto& ane = dynamic_cast<AneBackend&>(*be);
  const int before = sim::Compiler::process().compiles();
  const double loss = forward(ane, m, ws);
  backward(ane, m, ws);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_EQ(ane.programs_compiled(), 9);
  EXPECT_EQ(sim::Compiler::process().compiles() - before, 9);
}

}  // namespace
}  // namespace anetrain::test
