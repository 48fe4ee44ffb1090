// Activation recomputation on ane-sim: the backward reruns the forward's programs on each layer's
// kept input. Against ane-sim without recomputation, on a Qwen3 shape (GQA, QK-norm) training every
// weight and a Llama shape training LoRA adapters: the loss within 1e-2 relative and every gradient
// within 2e-2 of its norm (the whole-model ane-sim bound of ane_sim_grad.py). The simulator is
// deterministic, so the runs in fact agree bit for bit, which is asserted too: a program fed another
// layer's activations (a slot not refilled) would miss both by far.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "contract/registry.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"
#include "../op_test_util.h"
#include "tiny_models.h"

namespace anetrain::test {
namespace {

struct Result {
  double loss = 0;
  std::vector<float> grads;
};

Result run(Backend& be, Model& m, Recompute rc) {
  Workspace ws(m.cfg, 2, 16, nullptr, /*keep_logits=*/false, flash_attention_for(be, m.cfg, 2, 16), rc);
  const auto t = random_tokens(ws.inputs.size() + 1, m.cfg.vocab_size, 3);
  for (size_t i = 0; i < ws.inputs.size(); ++i) ws.inputs[i] = t[i], ws.targets[i] = t[i + 1];
  m.zero_grads();
  Result r;
  r.loss = forward(be, m, ws);
  backward(be, m, ws);
  r.grads.assign(m.grads.data(), m.grads.data() + m.table.grad_total());
  return r;
}

void expect_agree(Model& m, const std::string& tag) {
  auto be = make_backend("ane-sim");
  const Result want = run(*be, m, Recompute::none);
  for (Recompute rc : {Recompute::attention, Recompute::blocks}) {
    const std::string what = tag + " " + recompute_name(rc);
    const Result got = run(*be, m, rc);
    EXPECT_LE(std::fabs(got.loss - want.loss), 1e-2 * std::fabs(want.loss)) << what;
    double diff = 0, norm = 0;
    for (size_t i = 0; i < want.grads.size(); ++i) {
      diff += (double(got.grads[i]) - want.grads[i]) * (double(got.grads[i]) - want.grads[i]);
      norm += double(want.grads[i]) * want.grads[i];
    }
    EXPECT_GT(norm, 0) << what;
    EXPECT_LE(std::sqrt(diff), 2e-2 * std::sqrt(norm)) << what;
    EXPECT_EQ(got.loss, want.loss) << what;
    EXPECT_EQ(std::memcmp(got.grads.data(), want.grads.data(), want.grads.size() * sizeof(float)), 0) << what;
  }
}

TEST(AneSimRecompute, FullTrainingQwen3AgreesWithoutRecomputation) {
  Model m(ane_tiny_qwen3(3));
  init_random(m, 4);
  expect_agree(m, "qwen3 full");
}

TEST(AneSimRecompute, LoraLlamaAgreesWithoutRecomputation) {
  Model m(ane_tiny_llama(3));
  init_random(m, 6);
  m.add_adapters(LoraConfig{4, 8.0, {"q", "k", "v", "o", "gate", "up", "down"}});
  init_adapters(m, 7);
  for (const ParamSpec& s : m.table.specs())
    if (s.role == ParamRole::lora_b) {  // B nonzero: at PEFT's zero B every dA is zero
      const std::vector<float> v = random_vec(s.numel(), 50 + s.offset, -0.05f, 0.05f);
      std::memcpy(m.param(s), v.data(), v.size() * sizeof(float));
    }
  m.touch();
  expect_agree(m, "llama lora");
}

}  // namespace
}  // namespace anetrain::test
