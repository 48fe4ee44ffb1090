// A LoRA run's frozen base held in bf16 or Q8_0 (train --base-dtype): it computes exactly with the
// held values — loss and adapter gradients equal those of an fp32 model whose base was rounded the
// same way beforehand, on every precision of the backends — and no fp32 copy of the base exists:
// the fp32 arena holds the norms and adapters alone, only two layers are ever read out, and the
// process's memory grows by the held size, not the fp32 size.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <string>

#include "contract/registry.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"

namespace anetrain {
namespace {

ModelConfig held_config(int vocab) {
  ModelConfig c;
  c.arch = "qwen3";
  c.dim = 64, c.n_layers = 3, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 16, c.hidden_dim = 96;
  c.vocab_size = vocab, c.max_seq_len = 16, c.qk_norm = true, c.tied_embeddings = true;
  c.lora.rank = 4, c.lora.alpha = 8, c.lora.targets = lora_target_names();
  c.validate();
  return c;
}

bool not_adapter(const ParamSpec& s) { return !is_adapter(s); }

// c's base laid out with c's adapters and its matrices held in f, as a loader makes it.
std::unique_ptr<Model> held_model(const ModelConfig& c, WeightFormat f) {
  ModelConfig base = c;
  base.lora = LoraConfig{};
  return allocate_model(base, "test", ModelLayout{c.lora, f});
}

// Adapters whose B is not zero, so every adapter gradient is.
void init_with_adapters(Model& m) {
  init_random_where(m, 5, not_adapter);
  init_adapters(m, 7);
  Rng rng(9);
  for (const ParamSpec& s : m.table.specs())
    if (s.role == ParamRole::lora_b)
      for (size_t i = 0; i < s.numel(); ++i) m.param(s)[i] = float(0.05 * (2 * rng.uniform() - 1));
  m.touch();
}

struct Result {
  double loss;
  std::vector<float> grads;
};

Result step(Backend& be, Model& m, bool keep_logits, bool masked) {
  Workspace ws(m.cfg, 2, 8, nullptr, keep_logits);
  Rng rng(3);
  for (size_t i = 0; i < ws.inputs.size(); ++i) {
    ws.inputs[i] = int32_t(rng.below(uint64_t(m.cfg.vocab_size)));
    ws.targets[i] = int32_t(rng.below(uint64_t(m.cfg.vocab_size)));
  }
  if (masked) {
    ws.loss_mask.assign(ws.inputs.size(), 1);
    for (size_t i = 0; i < ws.loss_mask.size(); i += 3) ws.loss_mask[i] = 0;
  }
  m.zero_grads();
  const double loss = forward(be, m, ws);
  backward(be, m, ws, 1.0f, {});
  return {loss, std::vector<float>(m.grads.begin(), m.grads.end())};
}

double worst_relative(const std::vector<float>& got, const std::vector<float>& want) {
  double scale = 0, worst = 0;
  for (float v : want) scale = std::max(scale, double(std::fabs(v)));
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
  return worst / scale;
}

TEST(HeldBase, ComputesExactlyWithTheRoundedValuesOnEveryBackendPrecision) {
  // 4,100 tokens: the held classifier's chunks of 4,096 rows and a short last one.
  const ModelConfig c = held_config(4100);
  for (WeightFormat f : {WeightFormat::bf16, WeightFormat::q8_0}) {
    auto held = held_model(c, f);
    init_with_adapters(*held);
    // The reference: every tensor fp32, the base matrices rounded as the store rounds them.
    Model ref(c);
    init_with_adapters(ref);
    for (const ParamSpec& s : ref.table.specs())
      if (held->table.specs()[size_t(&s - ref.table.specs().data())].held) round_like_held(f, ref.param(s), s.numel());
    for (const auto& [backend, precision] : {std::pair{"ref", Precision::fp32}, std::pair{"cpu", Precision::fp32},
                                             std::pair{"cpu", Precision::bf16}})
      for (bool keep_logits : {false, true})
        for (bool masked : {false, true}) {
          SCOPED_TRACE(weight_format_name(f) + " " + backend + " " + precision_name(precision) +
                       (keep_logits ? " logits" : "") + (masked ? " masked" : ""));
          auto be = make_backend(backend, precision);
          const Result want = step(*be, ref, keep_logits, masked), got = step(*be, *held, keep_logits, masked);
          // Only the classifier's log-sum-exp is summed in another order (held_classifier.h).
          EXPECT_LE(std::fabs(got.loss - want.loss), 1e-6 * std::fabs(want.loss));
          ASSERT_EQ(got.grads.size(), want.grads.size());
          EXPECT_LE(worst_relative(got.grads, want.grads), 1e-6);
        }
  }
}

TEST(HeldBase, HoldsNoFp32CopyOfTheBase) {
  const ModelConfig c = held_config(512);
  for (WeightFormat f : {WeightFormat::bf16, WeightFormat::q8_0}) {
    auto m = held_model(c, f);
    size_t fp32 = 0, held = 0;
    for (const ParamSpec& s : m->table.specs()) (s.held ? held : fp32) += s.numel();
    // Norm gains and adapters alone in the arena; every base matrix in the store.
    for (const ParamSpec& s : m->table.specs()) EXPECT_EQ(s.held, s.is_matrix() && !is_adapter(s)) << s.name;
    EXPECT_EQ(m->params.size(), fp32);
    EXPECT_EQ(m->held->bytes(), f == WeightFormat::bf16 ? 2 * held : held + held / 32 * sizeof(float));
    EXPECT_EQ(m->w.embedding, nullptr);
    EXPECT_EQ(m->w.classifier, nullptr);
    EXPECT_THROW(m->param(m->table.at(ParamRole::wq, 0)), Error);
    // Two layers readable at a time: reading a third clears the views of the oldest.
    m->bring_layer(0);
    m->bring_layer(1);
    EXPECT_NE(m->w.layers[0].wq, nullptr);
    m->bring_layer(2);
    EXPECT_EQ(m->w.layers[0].wq, nullptr);
    EXPECT_EQ(m->w.layers[0].w_down, nullptr);
    EXPECT_NE(m->w.layers[1].wq, nullptr);
    EXPECT_NE(m->w.layers[2].w_down, nullptr);
    EXPECT_NE(m->w.layers[2].attn_norm, nullptr);
    // Gradients for the adapters alone.
    m->zero_grads();
    size_t adapters = 0;
    for (const ParamSpec& s : m->table.specs()) adapters += is_adapter(s) ? s.numel() : 0;
    EXPECT_EQ(m->grads.size(), adapters);
  }
}

size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * size_t(sysconf(_SC_PAGESIZE));
}

TEST(HeldBase, MemoryGrowsByTheHeldSizeNotTheFp32Size) {
  if (!std::ifstream("/proc/self/statm")) GTEST_SKIP() << "no /proc/self/statm";
  // ~37M base parameters: 148 MB in fp32, 74 MB in bf16, 42 MB in Q8_0.
  ModelConfig c = held_config(32000);
  c.dim = 512, c.n_heads = 8, c.n_kv_heads = 4, c.head_dim = 64, c.hidden_dim = 1536, c.n_layers = 6;
  c.validate();
  const double fp32_bytes = 4 * claimed_parameters(c);
  for (WeightFormat f : {WeightFormat::bf16, WeightFormat::q8_0}) {
    const size_t before = resident_bytes();
    auto m = held_model(c, f);
    init_random_where(*m, 1, not_adapter);
    const double grown = double(resident_bytes()) - double(before);
    const double held = double(m->held->bytes());
    SCOPED_TRACE(weight_format_name(f) + ": grew " + std::to_string(grown / 1e6) + " MB, held " +
                 std::to_string(held / 1e6) + " MB, fp32 " + std::to_string(fp32_bytes / 1e6) + " MB");
    // The store, the small fp32 arena and allocator slack; an fp32 copy would add 148 MB.
    EXPECT_LT(grown, held + 0.25 * fp32_bytes);
  }
}

TEST(HeldBase, Q8RefusesRowsThatAreNotWholeBlocks) {
  ModelConfig c = held_config(512);
  c.hidden_dim = 40;  // down_proj's rows: 40 values
  c.validate();
  try {
    Model m(c, WeightFormat::q8_0);
    FAIL() << "a ragged Q8_0 base was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.mlp.down_proj.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bf16"), std::string::npos) << e.what();
  }
  c.lora.rank = 0;
  EXPECT_THROW(Model(c, WeightFormat::bf16), Error);  // full training updates the base
}

}  // namespace
}  // namespace anetrain
