// Activation recomputation (Workspace's Recompute): the backward reruns the forward's stages on
// each layer's kept input, so the loss and every gradient must be the same bits as without it —
// on cpu in fp32 and bf16 (fused stages), training every weight or LoRA adapters, on a Llama and
// a Qwen3 shape (GQA, QK-norm), in attention's plain and flash forms, with a loss mask and with
// --act-clip. A layer whose activations were not recomputed would read another layer's (the slot
// is shared), which misses by far. And the workspace holds one layer's saved activations.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "contract/registry.h"
#include "core/error.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

ModelConfig tiny(bool qwen3) {
  ModelConfig c;
  c.dim = 32, c.n_layers = 3, c.hidden_dim = 48, c.vocab_size = 37, c.max_seq_len = 64;
  c.n_heads = 4, c.n_kv_heads = 4, c.head_dim = 8;
  if (qwen3) {
    c.arch = "qwen3";
    c.n_kv_heads = 2, c.head_dim = 12, c.qk_norm = true;
    c.rope_style = RopeStyle::half, c.rope_theta = 1e6, c.norm_eps = 1e-6;
  }
  c.validate();
  return c;
}

// Random base weights; with adapters, B nonzero too (at a zero B every dA is zero).
std::unique_ptr<Model> model(bool qwen3, bool lora) {
  auto m = std::make_unique<Model>(tiny(qwen3));
  init_random(*m, 7);
  if (lora) {
    m->add_adapters(LoraConfig{4, 8.0, {"q", "k", "v", "o", "gate", "up", "down"}});
    init_adapters(*m, 8);
    for (const ParamSpec& s : m->table.specs())
      if (s.role == ParamRole::lora_b) {
        const std::vector<float> v = random_vec(s.numel(), 100 + s.offset, -0.05f, 0.05f);
        std::memcpy(m->param(s), v.data(), v.size() * sizeof(float));
      }
    m->touch();
  }
  return m;
}

struct Options {
  bool masked = false;
  float act_clip = 0;
};

struct Result {
  double loss = 0;
  std::vector<float> grads;
  size_t floats = 0;
};

Result run(Backend& be, Model& m, int B, int T, Recompute rc, const Options& o) {
  Workspace ws(m.cfg, B, T, nullptr, /*keep_logits=*/false, flash_attention_for(be, m.cfg, B, T), rc);
  const auto t = random_tokens(ws.inputs.size() + 1, m.cfg.vocab_size, 5);
  for (size_t i = 0; i < ws.inputs.size(); ++i) ws.inputs[i] = t[i], ws.targets[i] = t[i + 1];
  if (o.masked) {
    ws.loss_mask.assign(ws.inputs.size(), 0);
    for (size_t i = 0; i < ws.loss_mask.size(); ++i) ws.loss_mask[i] = (i % 3) != 0;
  }
  ws.act_clip = o.act_clip;
  m.zero_grads();
  Result r;
  r.loss = forward(be, m, ws);
  backward(be, m, ws);
  r.grads.assign(m.grads.data(), m.grads.data() + m.table.grad_total());
  r.floats = ws.floats();
  return r;
}

// backend, qwen3, lora, recompute mode, T (12: attention with probabilities; 64: cpu's flash form)
using Case = std::tuple<std::string, bool, bool, Recompute, int>;
class RecomputeBits : public ::testing::TestWithParam<Case> {};

TEST_P(RecomputeBits, GradientsAreTheSameBitsAsWithout) {
  const auto [backend, qwen3, lora, rc, T] = GetParam();
  auto be = make_backend(backend);
  auto m = model(qwen3, lora);
  for (const Options& o : {Options{}, Options{true, 0}, Options{false, 0.02f}}) {
    const std::string tag = std::string(o.masked ? "masked" : "") + (o.act_clip > 0 ? "act-clip" : "");
    const Result want = run(*be, *m, 2, T, Recompute::none, o);
    const Result got = run(*be, *m, 2, T, rc, o);
    EXPECT_EQ(std::memcmp(&got.loss, &want.loss, sizeof(double)), 0) << tag << " " << got.loss << " vs " << want.loss;
    ASSERT_EQ(got.grads.size(), want.grads.size());
    size_t differ = 0;
    for (size_t i = 0; i < want.grads.size(); ++i) differ += std::memcmp(&got.grads[i], &want.grads[i], sizeof(float)) != 0;
    EXPECT_EQ(differ, 0u) << tag << ": gradient elements that differ, of " << want.grads.size();
    EXPECT_LT(got.floats, want.floats) << tag;
  }
  if (T == 12) {  // the clamp must have acted somewhere, or the act-clip case proves nothing new
    const Result clipped = run(*be, *m, 2, T, Recompute::none, Options{false, 0.02f});
    const Result plain = run(*be, *m, 2, T, Recompute::none, Options{});
    EXPECT_NE(clipped.loss, plain.loss);
  }
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const auto [backend, qwen3, lora, rc, T] = info.param;
  std::string b = backend;
  for (char& ch : b)
    if (ch == '-') ch = '_';
  return b + (qwen3 ? "_qwen3" : "_llama") + (lora ? "_lora" : "_full") + "_" + recompute_name(rc) + "_T" +
         std::to_string(T);
}

INSTANTIATE_TEST_SUITE_P(Cpu, RecomputeBits,
                         ::testing::Combine(::testing::Values("cpu", "cpu-bf16"), ::testing::Bool(), ::testing::Bool(),
                                            ::testing::Values(Recompute::attention, Recompute::blocks),
                                            ::testing::Values(12, 64)),
                         case_name);

// The plan: per layer, `none` keeps x_mid and both blocks' saved activations; `attention` keeps
// one attention block's; `blocks` one of each (and one x_mid); both add one (N,D) discard buffer.
TEST(RecomputePlan, SavedActivationsShrinkToOneLayer) {
  for (bool qwen3 : {false, true})
    for (bool flash : {false, true}) {
      const ModelConfig c = tiny(qwen3);
      const int B = 2, T = 16, L = c.n_layers;
      const BlockDims d = block_dims(c, B, T);
      size_t attn = 0, ffn = 0;
      const TakeFloats count_attn = [&](size_t n) -> float* { attn += n; return nullptr; };
      const TakeFloats count_ffn = [&](size_t n) -> float* { ffn += n; return nullptr; };
      plan_attention_saved(count_attn, d, true, flash);
      plan_ffn_saved(count_ffn, d);
      const size_t ND = size_t(B) * T * c.dim;
      const size_t none = Workspace(c, B, T, nullptr, false, flash).floats();
      EXPECT_EQ(Workspace(c, B, T, nullptr, false, flash, Recompute::attention).floats(),
                none - size_t(L - 1) * attn + ND);
      EXPECT_EQ(Workspace(c, B, T, nullptr, false, flash, Recompute::blocks).floats(),
                none - size_t(L - 1) * (attn + ffn + ND) + ND);
    }
}

TEST(RecomputePlan, NamesParseAndABadOneIsNamedInTheError) {
  for (Recompute r : {Recompute::none, Recompute::attention, Recompute::blocks})
    EXPECT_EQ(parse_recompute(recompute_name(r), "--recompute"), r);
  try {
    parse_recompute("layers", "--recompute");
    FAIL() << "accepted 'layers'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--recompute must be none, attention or blocks, got 'layers'"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace anetrain::test
