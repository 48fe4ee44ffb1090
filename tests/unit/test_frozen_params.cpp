// Training a subset of the parameters (ParamSpec::trainable): the gradient arena and the
// optimizer's moments hold the trainable tensors alone; a training step leaves the frozen weights
// bit-identical and moves the trainable ones exactly as a step that computes every gradient does;
// checkpoints keep the moments of the trainable tensors; data parallel buckets tile the smaller
// arena.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "contract/registry.h"
#include "core/rng.h"
#include "dist/grad_sync.h"
#include "formats/anck.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/run_dir.h"

namespace anetrain {
namespace {

ModelConfig small_config(bool tied) {
  ModelConfig c;
  c.dim = 32, c.n_layers = 3, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8, c.hidden_dim = 40;
  c.vocab_size = 29, c.max_seq_len = 16, c.qk_norm = true, c.tied_embeddings = tied;
  c.validate();
  return c;
}

// Frozen: the embedding (with it a tied classifier), layer 1 whole, the attention matrices of
// layer 0 and the final norm. Trainable: the rest (an untied lm_head among them).
bool partly(const ParamSpec& s) {
  if (s.role == ParamRole::embedding || s.role == ParamRole::final_norm || s.layer == 1) return false;
  if (s.layer == 0 && (s.role == ParamRole::wq || s.role == ParamRole::wk || s.role == ParamRole::wv ||
                       s.role == ParamRole::wo))
    return false;
  return true;
}

std::unique_ptr<Model> model(bool tied, bool only_some) {
  auto m = std::make_unique<Model>(small_config(tied));
  init_random(*m, 11);
  if (only_some) m->set_trainable(partly);
  return m;
}

void fill_batch(Workspace& ws, int V) {
  Rng rng(3);
  for (size_t i = 0; i < ws.inputs.size(); ++i)
    ws.inputs[i] = int32_t(rng.below(uint64_t(V))), ws.targets[i] = int32_t(rng.below(uint64_t(V)));
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

TEST(FrozenParams, GradientArenaHoldsTheTrainableTensorsInTableOrder) {
  auto m = model(/*tied=*/false, /*only_some=*/true);
  m->zero_grads();
  size_t next = 0;
  for (const ParamSpec& s : m->table.specs()) {
    EXPECT_EQ(s.trainable, partly(s)) << s.name;
    if (!s.trainable) {
      EXPECT_EQ(m->grad(s), nullptr) << s.name;
      continue;
    }
    EXPECT_EQ(s.grad_offset, next) << s.name;
    EXPECT_EQ(m->grad(s), m->grads.data() + next) << s.name;
    next += s.numel();
  }
  EXPECT_EQ(m->table.grad_total(), next);
  EXPECT_EQ(m->grads.size(), next);
  EXPECT_LT(next, m->table.total());
  EXPECT_EQ(m->g.embedding, nullptr);
  EXPECT_EQ(m->g.final_norm, nullptr);
  EXPECT_NE(m->g.classifier, nullptr);
  EXPECT_EQ(m->g.layers[1].w_up, nullptr);
  EXPECT_EQ(m->g.layers[0].wq, nullptr);
  EXPECT_NE(m->g.layers[0].w_up, nullptr);
  // Everything trainable: the gradients are laid out as the weights.
  auto full = model(false, false);
  EXPECT_EQ(full->table.grad_total(), full->table.total());
  for (const ParamSpec& s : full->table.specs()) EXPECT_EQ(s.grad_offset, s.offset);
}

class FrozenStep : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

// Without clipping (the global norm covers different sets), a step of the partly trainable model
// equals the full step on the trainable tensors, gradient for gradient and weight for weight.
TEST_P(FrozenStep, FrozenStayTrainableMatchTheFullStep) {
  const auto [name, tied] = GetParam();
  auto be = make_backend(name);
  auto full = model(tied, false), some = model(tied, true);
  const std::vector<float> before(some->params.begin(), some->params.end());
  Workspace ws_full(full->cfg, 2, 8, nullptr, false, flash_attention_for(*be, full->cfg, 2, 8));
  Workspace ws_some(some->cfg, 2, 8, nullptr, false, flash_attention_for(*be, some->cfg, 2, 8));
  fill_batch(ws_full, full->cfg.vocab_size);
  fill_batch(ws_some, some->cfg.vocab_size);
  AdamWConfig oc;
  oc.warmup = 0;
  oc.clip = 0;
  AdamW opt_full(*full, oc), opt_some(*some, oc);
  EXPECT_EQ(opt_some.m1().size(), some->table.grad_total());
  for (int step = 0; step < 2; ++step) {
    full->zero_grads();
    some->zero_grads();
    const double loss_full = forward(*be, *full, ws_full), loss_some = forward(*be, *some, ws_some);
    if (step == 0) {
      EXPECT_EQ(loss_full, loss_some);
    }
    backward(*be, *full, ws_full);
    backward(*be, *some, ws_some);
    const auto& specs = some->table.specs();
    if (step == 0) {
      for (size_t k = 0; k < specs.size(); ++k) {
        if (specs[k].trainable) {
          EXPECT_TRUE(same_bits(some->grad(specs[k]), full->grad(full->table.specs()[k]), specs[k].numel()))
              << name << " " << specs[k].name;
        }
      }
    }
    opt_full.step(*full, *be);
    opt_some.step(*some, *be);
    for (const ParamSpec& s : some->table.specs()) {
      if (!s.trainable) {
        EXPECT_TRUE(same_bits(some->param(s), before.data() + s.offset, s.numel())) << name << " frozen " << s.name;
      } else if (step == 0) {
        EXPECT_TRUE(same_bits(some->param(s), full->param(s), s.numel())) << name << " trained " << s.name;
      }
    }
  }
  // The optimizer refills the backend's derived weights (cpu-bf16's bf16 copy) with the frozen
  // rows too. Here the copy holds the other model's weights when the step runs, and afterwards a
  // fresh backend, converting everything itself, computes the same loss.
  some->zero_grads();
  forward(*be, *some, ws_some);
  backward(*be, *some, ws_some);
  forward(*be, *full, ws_full);
  opt_some.step(*some, *be);
  auto fresh = make_backend(name);
  EXPECT_EQ(forward(*be, *some, ws_some), forward(*fresh, *some, ws_some)) << name;
}

INSTANTIATE_TEST_SUITE_P(Backends, FrozenStep,
                         ::testing::Combine(::testing::Values("ref", "cpu", "cpu-bf16"), ::testing::Bool()),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param) + (std::get<1>(info.param) ? "_tied" : "_untied");
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(FrozenParams, CheckpointKeepsTheTrainableMoments) {
  const auto dir = std::filesystem::temp_directory_path() / ("anetrain_frozen_ckpt_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto be = make_backend("cpu");
  auto m = model(false, true);
  Workspace ws(m->cfg, 1, 8);
  fill_batch(ws, m->cfg.vocab_size);
  AdamWConfig oc;
  oc.warmup = 0;
  AdamW opt(*m, oc);
  m->zero_grads();
  forward(*be, *m, ws);
  backward(*be, *m, ws);
  opt.step(*m, *be);
  TrainState st;
  st.step = 1;
  std::string saved;
  {
    RunDir run = RunDir::create(dir.string(), false);
    run.write_settings({{"model", "test"}});
    saved = save_checkpoint(run, *m, opt, st);
  }
  ASSERT_FALSE(saved.empty());
  AnckReader state((std::filesystem::path(saved) / "state.anck").string());
  for (const ParamSpec& s : m->table.specs())
    EXPECT_EQ(state.find("adam_m/" + s.name) != nullptr, s.trainable) << s.name;

  auto back = model(false, true);
  AdamW opt_back(*back, oc);
  TrainState st_back;
  load_checkpoint(saved, *back, &opt_back, &st_back);
  EXPECT_TRUE(same_bits(back->params.data(), m->params.data(), m->params.size()));
  EXPECT_TRUE(same_bits(opt_back.m1().data(), opt.m1().data(), opt.m1().size()));
  EXPECT_TRUE(same_bits(opt_back.m2().data(), opt.m2().data(), opt.m2().size()));
  EXPECT_EQ(opt_back.steps_taken(), 1);
  std::filesystem::remove_all(dir);
}

// A Comm that records the spans it was asked to sum.
class SpanComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  int local_size() const override { return 1; }
  std::string who(int r) const override { return "rank " + std::to_string(r); }
  void start_sum(float* data, size_t n) override { spans.push_back({data, n}); }
  void progress() override {}
  void finish_sums(const std::string&) override {}
  void allgather(const double*, int, double*, const std::string&) override {}
  void broadcast(void*, size_t, const std::string&) override {}
  [[noreturn]] void abort(const std::string& why, int) override { throw std::runtime_error(why); }
  std::vector<std::pair<float*, size_t>> spans;
};

TEST(FrozenParams, GradientBucketsTileTheTrainableGradients) {
  auto m = model(true, true);  // layer 1 and the (tied) embedding wholly frozen: empty buckets
  m->zero_grads();
  SpanComm comm;
  GradSync sync(comm, *m, /*overlap=*/true);
  for (int part = m->cfg.n_layers; part >= -1; --part) sync.part_final(*m, part);
  sync.finish(*m, "test");
  EXPECT_EQ(sync.bytes(), m->grads.size() * sizeof(float));
  std::vector<int> covered(m->grads.size(), 0);
  for (const auto& [p, n] : comm.spans) {
    EXPECT_GT(n, 0u);
    for (size_t i = 0; i < n; ++i) ++covered[size_t(p - m->grads.data()) + i];
  }
  for (size_t i = 0; i < covered.size(); ++i) ASSERT_EQ(covered[i], 1) << "gradient " << i;
  // The head (a frozen final norm, a tied classifier), layer 1 and the embedding have nothing
  // to sum: only layers 2 and 0 are sent.
  EXPECT_EQ(comm.spans.size(), 2u);
}

}  // namespace
}  // namespace anetrain
