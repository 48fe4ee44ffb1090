// cpu-bf16's weight copy: a weight inside the arena given to sync_weights is read from the bf16
// copy made for that version, anything else is converted per call; both must give the same bits,
// and the copy must follow the weights when their version moves (it is rebuilt, not patched).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "backends/cpu/cpu_backend.h"
#include "contract/registry.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"
#include "op_test_util.h"
#include "train/optimizer.h"

namespace anetrain::test {
namespace {

TEST(CpuBf16Weights, CopyFollowsTheVersionAndMatchesPerCallConversion) {
  auto be = make_backend("cpu-bf16");
  const int N = 9, in = 48, out = 40;
  // An arena with two matrices; the product reads the second, at a non-zero offset.
  std::vector<float> arena = random_vec(size_t(out) * in * 2, 1);
  const float* W = arena.data() + size_t(out) * in;
  const std::vector<float> x = random_vec(size_t(N) * in, 2);
  std::vector<float> y_arena(size_t(N) * out), y_loose(size_t(N) * out);
  auto run = [&](uint64_t version) {
    be->sync_weights({arena.data(), arena.size(), version});
    be->linear_fwd(x.data(), W, y_arena.data(), N, in, out);
    const std::vector<float> loose(W, W + size_t(out) * in);  // the same values outside the arena
    be->linear_fwd(x.data(), loose.data(), y_loose.data(), N, in, out);
  };
  run(1);
  EXPECT_EQ(0, std::memcmp(y_arena.data(), y_loose.data(), sizeof(float) * y_arena.size()));
  const std::vector<float> before = y_arena;

  // New weights under a new version: the copy is rebuilt and the product follows them.
  for (size_t i = 0; i < arena.size(); ++i) arena[i] = -0.5f * arena[i] + 0.25f;
  run(2);
  EXPECT_EQ(0, std::memcmp(y_arena.data(), y_loose.data(), sizeof(float) * y_arena.size()));
  EXPECT_NE(0, std::memcmp(y_arena.data(), before.data(), sizeof(float) * y_arena.size()));

  // And the products are bf16 ones (not fp32 through another path): within bf16's bound of ref.
  auto ref = make_backend("ref");
  std::vector<float> y_ref(size_t(N) * out);
  ref->linear_fwd(x.data(), W, y_ref.data(), N, in, out);
  EXPECT_TRUE(all_close("cpu-bf16 arena product vs ref", y_arena.data(), y_ref.data(), y_ref.size(),
                        be->caps().numerics.linear_rtol));
  EXPECT_FALSE(all_close("cpu-bf16 differs from fp32", y_arena.data(), y_ref.data(), y_ref.size(), 1e-6));
}

// The optimizer refills the backend's bf16 copy in its own pass (and clears the gradients there):
// training with that must give the same bits as the plain optimizer step, after which the backend
// converts the arena itself before the next product — and the refill must be what is used (no
// conversion of the arena after the first).
TEST(CpuBf16Weights, OptimizerPassRefillsTheCopyAndClearsGradients) {
  ModelConfig c;
  c.dim = 32, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8, c.hidden_dim = 48;
  c.vocab_size = 37, c.max_seq_len = 16;
  c.validate();
  Model fused(c), plain(c);
  init_random(fused, 3);
  init_random(plain, 3);
  auto be_fused = make_backend("cpu-bf16"), be_plain = make_backend("cpu-bf16");
  Workspace ws(c, 2, 12);
  Rng rng(4);
  AdamWConfig oc;
  oc.warmup = 0, oc.total_steps = 4, oc.lr = 1e-2;
  AdamW opt_fused(fused, oc), opt_plain(plain, oc);
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < ws.inputs.size(); ++i)
      ws.inputs[i] = int32_t(rng.below(37)), ws.targets[i] = int32_t(rng.below(37));
    fused.zero_grads();
    const double loss_fused = forward(*be_fused, fused, ws);
    backward(*be_fused, fused, ws);
    opt_fused.step(fused, *be_fused);
    EXPECT_TRUE(fused.grads_zero);
    for (float g : fused.grads) ASSERT_EQ(g, 0.0f) << "step " << step;

    plain.zero_grads();
    const double loss_plain = forward(*be_plain, plain, ws);
    backward(*be_plain, plain, ws);
    opt_plain.step_with_norm(plain, grad_norm(plain));
    EXPECT_EQ(loss_fused, loss_plain) << "step " << step;
    EXPECT_EQ(dynamic_cast<CpuBackend&>(*be_fused).bf16_weight_conversions(), 1u) << "step " << step;
    EXPECT_EQ(dynamic_cast<CpuBackend&>(*be_plain).bf16_weight_conversions(), uint64_t(step + 1));
    ASSERT_EQ(0, std::memcmp(fused.params.data(), plain.params.data(), sizeof(float) * plain.params.size()))
        << "weights differ after step " << step;
  }
  // A step the optimizer skips (an overflow) leaves gradients behind: the next zero_grads() clears them.
  fused.zero_grads();
  forward(*be_fused, fused, ws);
  backward(*be_fused, fused, ws);
  EXPECT_FALSE(fused.grads_zero);
  fused.zero_grads();
  for (float g : fused.grads) ASSERT_EQ(g, 0.0f) << "zero_grads after a skipped step";

  // The copy the optimizer wrote is the one the next product reads: equal to converting per call.
  const auto& specs = fused.table.specs();
  const ParamSpec& wq = *std::find_if(specs.begin() + 1, specs.end(), [](const ParamSpec& s) { return s.is_matrix(); });
  const int out = int(wq.shape[0]), in = int(wq.shape[1]), N = 3;
  const std::vector<float> x = random_vec(size_t(N) * in, 5);
  std::vector<float> y_copy(size_t(N) * out), y_loose(size_t(N) * out);
  be_fused->sync_weights({fused.params.data(), fused.params.size(), fused.version});
  be_fused->linear_fwd(x.data(), fused.param(wq), y_copy.data(), N, in, out);
  const std::vector<float> loose(fused.param(wq), fused.param(wq) + wq.numel());
  be_fused->linear_fwd(x.data(), loose.data(), y_loose.data(), N, in, out);
  EXPECT_EQ(0, std::memcmp(y_copy.data(), y_loose.data(), sizeof(float) * y_copy.size()));
}

// A frozen base (LoRA): the optimizer leaves the copy's frozen weights as they are when the copy
// already holds the current version — the same bits as rewriting them every step (the plain step
// here, whose backend converts the whole arena each time), with no arena conversion after the first.
TEST(CpuBf16Weights, FrozenWeightsKeepTheirCopyAcrossSteps) {
  ModelConfig c;
  c.dim = 32, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8, c.hidden_dim = 48;
  c.vocab_size = 37, c.max_seq_len = 16;
  c.validate();
  LoraConfig lora;
  lora.rank = 2, lora.alpha = 4, lora.targets = {"q", "v", "up", "down"};
  Model fused(c), plain(c);
  for (Model* m : {&fused, &plain}) {
    init_random(*m, 3);
    m->add_adapters(lora);
    init_random_where(*m, 5, is_adapter);  // B nonzero: every adapter moves the loss
  }
  auto be_fused = make_backend("cpu-bf16"), be_plain = make_backend("cpu-bf16");
  Workspace ws(fused.cfg, 2, 12);
  Rng rng(4);
  AdamWConfig oc;
  oc.warmup = 0, oc.total_steps = 4, oc.lr = 1e-2;
  AdamW opt_fused(fused, oc), opt_plain(plain, oc);
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < ws.inputs.size(); ++i)
      ws.inputs[i] = int32_t(rng.below(37)), ws.targets[i] = int32_t(rng.below(37));
    fused.zero_grads();
    const double loss_fused = forward(*be_fused, fused, ws);
    backward(*be_fused, fused, ws);
    opt_fused.step(fused, *be_fused);
    plain.zero_grads();
    const double loss_plain = forward(*be_plain, plain, ws);
    backward(*be_plain, plain, ws);
    opt_plain.step_with_norm(plain, grad_norm(plain));
    EXPECT_EQ(loss_fused, loss_plain) << "step " << step;
    EXPECT_EQ(dynamic_cast<CpuBackend&>(*be_fused).bf16_weight_conversions(), 1u) << "step " << step;
    ASSERT_EQ(0, std::memcmp(fused.params.data(), plain.params.data(), sizeof(float) * plain.params.size()))
        << "weights differ after step " << step;
  }
}

}  // namespace
}  // namespace anetrain::test
