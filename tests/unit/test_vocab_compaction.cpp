// Vocabulary compaction must be exactly "the model restricted to the used ids": a compacted run
// over the full-vocabulary model gives the same loss and gradients as an uncompacted run of a
// model whose vocabulary *is* that set (rows gathered, ids renumbered), and rows of unused ids
// get no classifier gradient.
#include <gtest/gtest.h>

#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "core/rng.h"
#include "model/transformer.h"
#include "model/vocab_compaction.h"

namespace anetrain {
namespace {

ModelConfig tiny(bool tied) {
  ModelConfig c;
  c.dim = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 6;
  c.hidden_dim = 40;
  c.vocab_size = 50;
  c.max_seq_len = 32;
  c.tied_embeddings = tied;
  c.qk_norm = true;
  c.validate();
  return c;
}

void check_equivalence(Backend& be, bool tied) {
  const ModelConfig full_cfg = tiny(tied);
  Model full(full_cfg);
  init_random(full, 11);
  const int B = 2, T = 9;
  // Data uses only some ids; the compaction covers exactly those.
  const std::vector<int32_t> used_ids = {0, 3, 4, 7, 12, 13, 21, 30, 44, 49};
  std::vector<int32_t> rows;
  Rng rng(5);
  for (int i = 0; i < B * (T + 1); ++i) rows.push_back(used_ids[rng.below(used_ids.size())]);
  std::vector<uint8_t> used(full_cfg.vocab_size, 0);
  for (int id : rows) used[id] = 1;
  const VocabCompaction vc = VocabCompaction::from_used(used);

  // The restricted model: vocabulary = the used set, embedding/classifier rows gathered.
  ModelConfig small_cfg = full_cfg;
  small_cfg.vocab_size = vc.size();
  Model small(small_cfg);
  for (const auto& s : small.table.specs()) {
    const ParamSpec* f = full.table.find(s.name);
    ASSERT_NE(f, nullptr);
    if (s.role == ParamRole::embedding || s.role == ParamRole::lm_head) {
      for (int r = 0; r < vc.size(); ++r)
        std::copy_n(full.param(*f) + size_t(vc.compact_to_full[r]) * full_cfg.dim, full_cfg.dim,
                    small.param(s) + size_t(r) * full_cfg.dim);
    } else {
      std::copy_n(full.param(*f), s.numel(), small.param(s));
    }
  }

  Workspace wf(full_cfg, B, T, &vc), wsm(small_cfg, B, T);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      const int n = b * T + t;
      wf.inputs[n] = rows[b * (T + 1) + t];
      wf.targets[n] = rows[b * (T + 1) + t + 1];
      wsm.inputs[n] = vc.full_to_compact[wf.inputs[n]];
      wsm.targets[n] = vc.full_to_compact[wf.targets[n]];
    }
  full.zero_grads();
  small.zero_grads();
  const double lf = forward(be, full, wf);
  backward(be, full, wf);
  const double ls = forward(be, small, wsm);
  backward(be, small, wsm);
  EXPECT_NEAR(lf, ls, 1e-6 * std::abs(ls));

  for (const auto& s : small.table.specs()) {
    const ParamSpec* f = full.table.find(s.name);
    const float* gf = full.grad(*f);
    const float* gs = small.grad(s);
    float scale = 1e-12f;
    for (size_t i = 0; i < s.numel(); ++i) scale = std::max(scale, std::abs(gs[i]));
    if (s.role == ParamRole::embedding || s.role == ParamRole::lm_head) {
      for (int r = 0; r < vc.size(); ++r)
        for (int i = 0; i < full_cfg.dim; ++i)
          ASSERT_NEAR(gf[size_t(vc.compact_to_full[r]) * full_cfg.dim + i], gs[size_t(r) * full_cfg.dim + i],
                      1e-5f * scale)
              << s.name << " row " << r;
      for (int id = 0; id < full_cfg.vocab_size; ++id) {
        if (used[id]) continue;
        for (int i = 0; i < full_cfg.dim; ++i) ASSERT_EQ(gf[size_t(id) * full_cfg.dim + i], 0.0f) << s.name << " unused id " << id;
      }
    } else {
      for (size_t i = 0; i < s.numel(); ++i) ASSERT_NEAR(gf[i], gs[i], 1e-5f * scale) << s.name << " " << i;
    }
  }
}

TEST(VocabCompaction, EqualsRestrictedModelTiedRef) {
  RefBackend be;
  check_equivalence(be, true);
}
TEST(VocabCompaction, EqualsRestrictedModelUntiedRef) {
  RefBackend be;
  check_equivalence(be, false);
}
TEST(VocabCompaction, EqualsRestrictedModelTiedCpu) {
  CpuBackend be;
  check_equivalence(be, true);
}

}  // namespace
}  // namespace anetrain
