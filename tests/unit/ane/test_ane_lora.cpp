// LoRA adapters on the ane backends: the programs run each adapted projection as the merged
// matrix W + scale·B·A, and the host derives dA and dBt. Whole models (frozen base, adapters on
// the projections) against the cpu backend in fp32: the loss within 1e-2 relative and every
// adapter gradient within 2e-2 of its norm (‖g_ane − g_cpu‖ ≤ 2e-2·‖g_cpu‖, the whole-model ane-sim
// bound of ane_sim_grad.py, from fp16 storage in every stage). A merged matrix that is stale, an
// adapter applied twice or not at all, or a dA/dBt accumulated twice misses these by far.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "backends/ane/ane_backend.h"
#include "backends/ane/fake/fake_api.h"
#include "backends/ane/runtime/runtime.h"
#include "contract/registry.h"
#include "gen/decoder.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"
#include "../op_test_util.h"
#include "tiny_models.h"

namespace anetrain::test {
namespace {

void set_uniform(float* p, size_t n, uint64_t seed, float a) {
  const std::vector<float> v = random_vec(n, seed, -a, a);
  std::copy(v.begin(), v.end(), p);
}

// A base with random weights under adapters of rank r on `targets`, B nonzero (at PEFT's zero B
// every dA would be zero and prove nothing).
std::unique_ptr<Model> adapted(ModelConfig c, int r, std::vector<std::string> targets, uint64_t seed) {
  c.validate();
  auto m = std::make_unique<Model>(c);
  init_random(*m, seed);
  m->add_adapters(LoraConfig{r, 2.0 * r, std::move(targets)});
  init_adapters(*m, seed + 1);
  for (const ParamSpec& s : m->table.specs())
    if (s.role == ParamRole::lora_b) set_uniform(m->param(s), s.numel(), seed + s.offset, 0.05f);
  m->touch();
  return m;
}

void fill_batch(Workspace& ws, int V, uint64_t seed) {
  const auto t = random_tokens(ws.inputs.size() + 1, V, seed);
  for (size_t i = 0; i < ws.inputs.size(); ++i) ws.inputs[i] = t[i], ws.targets[i] = t[i + 1];
}

struct Grads {
  double loss = 0;
  std::map<std::string, std::vector<float>> g;  // every trainable tensor's gradient, by name
};

Grads loss_and_grads(Backend& be, Model& m, Workspace& ws) {
  m.zero_grads();
  Grads r;
  r.loss = forward(be, m, ws);
  backward(be, m, ws);
  for (const ParamSpec& s : m.table.specs())
    if (float* g = m.grad(s)) r.g[s.name].assign(g, g + s.numel());
  return r;
}

// The bounds of the header; and the ane gradients are not the cpu's bits (the programs ran).
void expect_follows_cpu(const Grads& ane, const Grads& cpu, const std::string& tag) {
  EXPECT_LE(std::fabs(ane.loss - cpu.loss), 1e-2 * std::fabs(cpu.loss)) << tag;
  ASSERT_EQ(ane.g.size(), cpu.g.size()) << tag;
  bool all_same_bits = true;
  for (const auto& [name, want] : cpu.g) {
    const std::vector<float>& got = ane.g.at(name);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
      norm += double(want[i]) * want[i];
    }
    EXPECT_GT(norm, 0) << tag << " " << name << " is zero: the comparison would prove nothing";
    EXPECT_LE(std::sqrt(diff), 2e-2 * std::sqrt(norm)) << tag << " " << name;
    all_same_bits &= std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0;
  }
  EXPECT_FALSE(all_same_bits) << tag << ": identical to cpu, so no program computed them";
}

const std::vector<std::string> kAll = {"q", "k", "v", "o", "gate", "up", "down"};

TEST(AneLora, OnlyAdaptersHaveGradientsAndTheyFollowCpu) {
  for (const auto& [name, cfg, targets] : {std::tuple{"qwen3", ane_tiny_qwen3(2), kAll},
                                           std::tuple{"llama q,v,down", ane_tiny_llama(2), std::vector<std::string>{"q", "v", "down"}}}) {
    auto m = adapted(cfg, 4, targets, 11);
    m->ensure_grads();
    for (const ParamSpec& s : m->table.specs()) EXPECT_EQ(m->grad(s) != nullptr, is_adapter(s)) << s.name;
    Workspace ws(m->cfg, 2, 24);
    fill_batch(ws, m->cfg.vocab_size, 12);
    auto cpu = make_backend("cpu"), ane = make_backend("ane-sim");
    const Grads want = loss_and_grads(*cpu, *m, ws);
    EXPECT_EQ(want.g.size(), 2 * targets.size() * m->cfg.n_layers);
    expect_follows_cpu(loss_and_grads(*ane, *m, ws), want, name);
    EXPECT_TRUE(take_fallbacks(ane->caps()).empty()) << name;
  }
}

TEST(AneLora, MergedWeightsFollowTheAdaptersAcrossVersions) {
  // One backend over two versions of the adapters: the merged matrices (and the staged inputs
  // made of them) are rebuilt for the new version, once per layer and kernel.
  auto m = adapted(ane_tiny_qwen3(2), 8, kAll, 21);
  Workspace ws(m->cfg, 1, 32);
  fill_batch(ws, m->cfg.vocab_size, 22);
  auto cpu = make_backend("cpu"), be = make_backend("ane-sim");
  auto& ane = dynamic_cast<AneBackend&>(*be);
  expect_follows_cpu(loss_and_grads(ane, *m, ws), loss_and_grads(*cpu, *m, ws), "first version");
  const int per_version = ane.weight_stagings();
  for (const ParamSpec& s : m->table.specs())
    if (is_adapter(s)) set_uniform(m->param(s), s.numel(), s.offset + 5, 0.2f);
  m->touch();
  const Grads want = loss_and_grads(*cpu, *m, ws);
  expect_follows_cpu(loss_and_grads(ane, *m, ws), want, "second version");
  EXPECT_EQ(ane.weight_stagings(), 2 * per_version);
  expect_follows_cpu(loss_and_grads(ane, *m, ws), want, "second version, staged");
  EXPECT_EQ(ane.weight_stagings(), 2 * per_version);
}

TEST(AneLora, ABackwardRejectedMidwayRunsAsTheHostsWithoutCountingTwice) {
  // The dual products are the last programs of both backward stages; when they fail, the stage
  // is redone on the host, whose own adapter arithmetic must be the only one that counted.
  auto m = adapted(ane_tiny_qwen3(2), 4, kAll, 31);
  Workspace ws(m->cfg, 2, 16);
  fill_batch(ws, m->cfg.vocab_size, 32);
  auto cpu = make_backend("cpu");
  AneBackend fake("ane-fake",
                  std::make_unique<ane::AneRuntime>(
                      ane::make_fake_api(ane::FakeOptions::parse("fail=evaluate,program=dual_linear_*"))),
                  make_backend("cpu"));
  const Grads got = loss_and_grads(fake, *m, ws);
  std::set<std::string> fallen;
  for (const ProgramFallback& f : fake.take_fallbacks()) fallen.insert(f.kernel);
  EXPECT_EQ(fallen, (std::set<std::string>{"gate_up_bwd", "kv_bwd"}));
  expect_follows_cpu(got, loss_and_grads(*cpu, *m, ws), "fallback");
}

TEST(AneLora, GenerationBakesTheMergedWeights) {
  // A prompt, then 12 tokens one at a time through the baked programs: the logits follow the
  // cpu backend's unmerged adapters within fp16 noise.
  auto m = adapted(ane_tiny_qwen3(2), 4, kAll, 41);
  auto cpu = make_backend("cpu"), be = make_backend("ane-sim");
  auto& ane = dynamic_cast<AneBackend&>(*be);
  Decoder dc(*cpu, *m, 64), da(ane, *m, 64);
  const int32_t prompt[4] = {3, 50, 7, 91};
  const float* lc = dc.feed(prompt, 4);
  const float* la = da.feed(prompt, 4);
  const int V = m->cfg.vocab_size;
  for (int step = 0; step < 12; ++step) {
    double scale = 0, worst = 0;
    for (int v = 0; v < V; ++v) {
      scale = std::max(scale, double(std::fabs(lc[v])));
      worst = std::max(worst, double(std::fabs(la[v] - lc[v])));
    }
    EXPECT_LE(worst, 2e-2 * scale) << "step " << step;
    const int32_t next = int32_t(std::max_element(lc, lc + V) - lc);
    lc = dc.feed(next);
    la = da.feed(next);
  }
  int baked_calls = 0;
  for (const KernelTiming& t : ane.take_kernel_timings())
    if (t.name == "decode_qkv") baked_calls = t.calls;
  EXPECT_EQ(baked_calls, 12 * m->cfg.n_layers);
}

}  // namespace
}  // namespace anetrain::test
