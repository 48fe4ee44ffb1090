// The masked loss (model/transformer.cpp with Workspace::loss_mask) on the real stories260K: its
// value is the mean of the counted rows' own losses, its gradient splits the whole batch's
// gradient exactly by rows (|S|·g_S + |S'|·g_S' = N·g_all), the kept-logits path (grad) and the
// classifier-stage path (training) agree, a batch with nothing counted adds nothing, and a step's
// masked micro-batches weigh their counted targets as one batch of them all would.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "contract/registry.h"
#include "formats/load.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/step.h"

namespace anetrain::test {
namespace {

const std::string kStories = std::string(ANETRAIN_ASSETS) + "/llama2c/stories260K.bin";
constexpr int kT = 16;

std::unique_ptr<Workspace> batch(Backend& be, const Model& m, int first, int B, bool keep_logits = false) {
  auto ws = std::make_unique<Workspace>(m.cfg, B, kT, nullptr, keep_logits, flash_attention_for(be, m.cfg, B, kT));
  const size_t V = size_t(m.cfg.vocab_size);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < kT; ++t) {
      const size_t i = size_t(first + b) * (kT + 1) + size_t(t);
      ws->inputs[size_t(b) * kT + t] = int32_t((i * 37 + 11) % V);
      ws->targets[size_t(b) * kT + t] = int32_t(((i + 1) * 37 + 11) % V);
    }
  return ws;
}

std::vector<uint8_t> pattern_mask(int N) {  // rows 0,3,4,7,8,11,…: an uneven, split set
  std::vector<uint8_t> mask(static_cast<size_t>(N));
  for (int n = 0; n < N; ++n) mask[size_t(n)] = uint8_t(n % 4 == 0 || n % 4 == 3);
  return mask;
}

std::vector<float> gradient(Backend& be, Model& m, Workspace& ws, double* loss = nullptr) {
  m.zero_grads();
  const double l = forward(be, m, ws);
  if (loss) *loss = l;
  backward(be, m, ws);
  return {m.grads.begin(), m.grads.end()};
}

double max_abs(const std::vector<float>& a) {
  double d = 0;
  for (float v : a) d = std::max(d, std::fabs(double(v)));
  return d;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
  return d;
}

class MaskedLoss : public ::testing::TestWithParam<const char*> {};

// The masked loss is the mean of the counted rows' per-row losses from the unmasked pass.
TEST_P(MaskedLoss, IsTheMeanOfTheCountedRowsLosses) {
  auto be = make_backend(GetParam(), Precision::fp32);
  auto m = load_model(kStories).model;
  auto ws = batch(*be, *m, 0, 3);
  const int N = 3 * kT;
  forward(*be, *m, *ws);
  const std::vector<float> rows(ws->losses, ws->losses + N);
  ws->loss_mask = pattern_mask(N);
  double want = 0;
  int M = 0;
  for (int n = 0; n < N; ++n)
    if (ws->loss_mask[size_t(n)]) want += rows[size_t(n)], ++M;
  want /= M;
  const double got = forward(*be, *m, *ws);
  EXPECT_EQ(ws->counted_rows(), M);
  EXPECT_NEAR(got, want, 1e-6 * want);  // the same rows' losses, summed in a different order
}

// Linearity: the loss over all rows is the counted-weighted sum of the losses over S and its
// complement, so the gradients must split the same way — a row lost or gathered wrongly breaks it.
TEST_P(MaskedLoss, GradientsOfARowSetAndItsComplementSumToTheWholeBatchs) {
  auto be = make_backend(GetParam(), Precision::fp32);
  auto m = load_model(kStories).model;
  const int B = 2, N = B * kT;
  auto ws = batch(*be, *m, 0, B);
  const std::vector<float> all = gradient(*be, *m, *ws);
  ws->loss_mask = pattern_mask(N);
  const int M = int(ws->counted_rows());
  const std::vector<float> in_s = gradient(*be, *m, *ws);
  for (auto& v : ws->loss_mask) v = uint8_t(1 - v);
  const std::vector<float> out_s = gradient(*be, *m, *ws);
  std::vector<float> combined(all.size());
  for (size_t i = 0; i < all.size(); ++i) combined[i] = float((double(M) * in_s[i] + double(N - M) * out_s[i]) / N);
  // fp32 gradients of O(1e-1): the two halves' rounding differs from the whole's by ~1e-7 relative.
  EXPECT_LE(max_abs_diff(combined, all), 1e-5 * max_abs(all));
  EXPECT_GT(max_abs_diff(in_s, all), 1e-3 * max_abs(all));  // the mask does change the gradient
}

// `grad` keeps the logits and masks dlogits; training gathers the rows for the classifier stage.
TEST_P(MaskedLoss, KeptLogitsAndClassifierStagePathsAgree) {
  auto be = make_backend(GetParam(), Precision::fp32);
  auto m = load_model(kStories).model;
  const int N = 2 * kT;
  auto staged = batch(*be, *m, 5, 2, false), kept = batch(*be, *m, 5, 2, true);
  staged->loss_mask = kept->loss_mask = pattern_mask(N);
  double l_staged = 0, l_kept = 0;
  const std::vector<float> g_staged = gradient(*be, *m, *staged, &l_staged);
  const std::vector<float> g_kept = gradient(*be, *m, *kept, &l_kept);
  EXPECT_NEAR(l_staged, l_kept, 1e-6 * l_kept);
  EXPECT_LE(max_abs_diff(g_staged, g_kept), 1e-5 * max_abs(g_kept));
}

// Nothing counted: the loss is 0 and the gradient exactly zero.
TEST_P(MaskedLoss, ABatchWithNothingCountedAddsNothing) {
  auto be = make_backend(GetParam(), Precision::fp32);
  auto m = load_model(kStories).model;
  auto ws = batch(*be, *m, 0, 2);
  ws->loss_mask.assign(size_t(2 * kT), 0);
  double loss = 1;
  const std::vector<float> g = gradient(*be, *m, *ws, &loss);
  EXPECT_EQ(loss, 0.0);
  EXPECT_EQ(max_abs(g), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Backends, MaskedLoss, ::testing::Values("ref", "cpu"));

// One step over two masked micro-batches (counts 12 and 8 of 16, plus one with none) updates
// the weights as one step over a single batch holding all their rows does: the micro-batches
// weigh count / total, not 1/accum. The empty one is counted and adds nothing.
TEST(MaskedStep, MicroBatchesWeighTheirCountedTargets) {
  auto be = make_backend("cpu", Precision::fp32);
  auto m_split = load_model(kStories).model, m_whole = load_model(kStories).model;
  auto a = batch(*be, *m_split, 0, 1), b = batch(*be, *m_split, 1, 1), c = batch(*be, *m_split, 2, 1);
  auto whole = batch(*be, *m_whole, 0, 2);  // rows of a, then of b
  a->loss_mask.assign(kT, 0);
  b->loss_mask.assign(kT, 0);
  c->loss_mask.assign(kT, 0);
  for (int t = 0; t < 12; ++t) a->loss_mask[size_t(t)] = 1;
  for (int t = 8; t < kT; ++t) b->loss_mask[size_t(t)] = 1;
  whole->loss_mask = a->loss_mask;
  whole->loss_mask.insert(whole->loss_mask.end(), b->loss_mask.begin(), b->loss_mask.end());
  AdamWConfig oc;
  oc.warmup = 0;
  // AdamW's first update is lr·g/(|g| + eps): with the usual eps a gradient at the rounding level
  // moves its weight by up to ±lr whichever its sign, so two sums in different orders could differ
  // there by lr. eps = 1 makes the update ≈ lr·g (these gradients are clipped to norm 1), so the
  // weights compare the two gradients themselves.
  oc.eps = 1.0;
  AdamW opt_split(*m_split, oc), opt_whole(*m_whole, oc);
  StepPolicy policy;
  std::vector<StepResult> split_steps;
  const std::vector<float> l_split = fit_fixed_batch(*be, *m_split, opt_split, {a.get(), c.get(), b.get()}, 1, policy,
                                                     [&](int, const StepResult& r) { split_steps.push_back(r); });
  const std::vector<float> l_whole = fit_fixed_batch(*be, *m_whole, opt_whole, {whole.get()}, 1, policy);
  ASSERT_EQ(split_steps.size(), 1u);
  EXPECT_EQ(split_steps[0].counted_targets, 20);
  EXPECT_EQ(split_steps[0].empty_windows, 1);
  EXPECT_EQ(split_steps[0].empty_micro_batches, 1);
  EXPECT_NEAR(l_split[0], l_whole[0], 1e-6 * l_whole[0]);
  const std::vector<float> w_split(m_split->params.begin(), m_split->params.end());
  const std::vector<float> w_whole(m_whole->params.begin(), m_whole->params.end());
  // One step moves each weight by ≈ lr·g (lr 3e-4, |g| ≤ 1): the two gradients differ by fp32
  // rounding only, ≤ 1e-5 of the clipped norm, so the weights by ≤ lr·1e-5 — plus one rounding
  // of the new weight, an ulp of 1.19e-7 for the norms' gains near 1.
  EXPECT_LE(max_abs_diff(w_split, w_whole), 3e-9 + 1.2e-7);
}

// A step in which nothing counts has nothing to learn from: no update, not a non-finite step.
TEST(MaskedStep, AStepWithNothingCountedSkipsTheUpdate) {
  auto be = make_backend("cpu", Precision::fp32);
  auto m = load_model(kStories).model;
  auto ws = batch(*be, *m, 0, 2);
  ws->loss_mask.assign(size_t(2 * kT), 0);
  const std::vector<float> before(m->params.begin(), m->params.end());
  AdamWConfig oc;
  oc.warmup = 0;
  AdamW opt(*m, oc);
  StepResult seen;
  fit_fixed_batch(*be, *m, opt, {ws.get()}, 1, StepPolicy{}, [&](int, const StepResult& r) { seen = r; });
  EXPECT_TRUE(seen.no_targets);
  EXPECT_FALSE(seen.applied);
  EXPECT_FALSE(seen.nonfinite);
  EXPECT_EQ(std::vector<float>(m->params.begin(), m->params.end()), before);
}

}  // namespace
}  // namespace anetrain::test
