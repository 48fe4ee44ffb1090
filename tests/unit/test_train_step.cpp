// train_step (train/step.h) on the real stories260K: loss scaling on an fp16 backend (ane-sim),
// including a real overflow; micro-batches against one batch of their combined size; and the
// non-finite policy as fit-batch now applies it.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "contract/registry.h"
#include "core/error.h"
#include "formats/load.h"
#include "model/model.h"
#include "model/workspace.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/step.h"

namespace anetrain::test {
namespace {

// A build without the ane-sim backend (-DANETRAIN_BACKEND_ANE_SIM=OFF) has no fp16 backend to test.
bool built(const char* backend) {
  const BackendEntry* e = find_backend(backend);
  return e && e->make;
}

const std::string kStories = std::string(ANETRAIN_ASSETS) + "/llama2c/stories260K.bin";
constexpr int kT = 16;

std::unique_ptr<Model> stories() { return load_model(kStories).model; }

// Rows [first, first + B) of a fixed pseudo-random token stream, as training windows.
std::unique_ptr<Workspace> batch(Backend& be, const Model& m, int first, int B) {
  auto ws = std::make_unique<Workspace>(m.cfg, B, kT, nullptr, /*keep_logits=*/false,
                                        flash_attention_for(be, m.cfg, B, kT));
  const size_t V = size_t(m.cfg.vocab_size);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < kT; ++t) {
      const size_t i = size_t(first + b) * (kT + 1) + size_t(t);
      ws->inputs[size_t(b) * kT + t] = int32_t((i * 37 + 11) % V);
      ws->targets[size_t(b) * kT + t] = int32_t(((i + 1) * 37 + 11) % V);
    }
  return ws;
}

MicroBatches from(const std::vector<Workspace*>& micro, size_t& next) {
  MicroBatches b;
  b.per_rank = int(micro.size());
  b.next = [&micro, &next]() -> Workspace& { return *micro[next++ % micro.size()]; };
  return b;
}

std::vector<float> weights(const Model& m) { return {m.params.begin(), m.params.end()}; }

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
  return d;
}

double max_abs(const std::vector<float>& a) {
  double d = 0;
  for (float v : a) d = std::max(d, std::fabs(double(v)));
  return d;
}

// ane-sim computes its stages in fp16: the step runs at the dynamic loss scale, unscales before
// the norm (the norm is an fp32 backend's, not 2^16 times it), and a scale so large that the fp16
// gradients overflow skips the update — weights untouched — and halves the scale.
TEST(TrainStep, Fp16BackendScalesTheLossAndSkipsAnOverflow) {
  if (!built("ane-sim")) GTEST_SKIP() << "built without ane-sim";
  auto ane = make_backend("ane-sim"), cpu = make_backend("cpu");
  ASSERT_TRUE(ane->caps().numerics.fp16);
  auto m = stories(), m_cpu = stories();
  auto ws = batch(*ane, *m, 0, 2), ws_cpu = batch(*cpu, *m_cpu, 0, 2);
  AdamWConfig oc;
  oc.warmup = 0;
  AdamW opt(*m, oc), opt_cpu(*m_cpu, oc);

  StepPolicy policy;
  policy.scaling = loss_scaling_for(*ane);
  ASSERT_TRUE(policy.scaling.enabled);
  StepPolicy policy_cpu;
  policy_cpu.scaling = loss_scaling_for(*cpu);
  EXPECT_FALSE(policy_cpu.scaling.enabled);
  TrainState st, st_cpu;
  begin_loss_scaling(policy.scaling, st);
  begin_loss_scaling(policy_cpu.scaling, st_cpu);
  EXPECT_EQ(st.loss_scale, LossScaling::kInitial);
  EXPECT_EQ(st_cpu.loss_scale, 1.0);

  std::vector<Workspace*> one{ws.get()}, one_cpu{ws_cpu.get()};
  size_t n = 0, n_cpu = 0;
  MicroBatches b = from(one, n), b_cpu = from(one_cpu, n_cpu);
  const StepResult r = train_step({*ane, *m, opt}, policy, b, st);
  const StepResult r_cpu = train_step({*cpu, *m_cpu, opt_cpu}, policy_cpu, b_cpu, st_cpu);
  ASSERT_TRUE(r.applied);
  ASSERT_TRUE(r_cpu.applied);
  EXPECT_EQ(r.loss_scale, LossScaling::kInitial);
  EXPECT_EQ(r_cpu.loss_scale, 1.0);
  EXPECT_EQ(st.loss_scale, LossScaling::kInitial);  // 1 clean step of a 1000-step window
  // fp16 stages against fp32: each activation rounded at 2^-11 (5e-4), averaged over the batch
  // (measured 5e-5 for the loss, 7e-5 for the norm); a norm left scaled would be 2^16 times it.
  EXPECT_NEAR(r.loss, r_cpu.loss, 1e-3 * r_cpu.loss);
  EXPECT_NEAR(r.grad_norm, r_cpu.grad_norm, 1e-2 * r_cpu.grad_norm);

  // 2^24: the classifier's gradient alone, (softmax − onehot)/N · 2^24, is far past fp16's 65504.
  st.loss_scale = LossScaling::kMax;
  const std::vector<float> before = weights(*m);
  const StepResult o = train_step({*ane, *m, opt}, policy, b, st);
  EXPECT_TRUE(o.overflow);
  EXPECT_FALSE(o.applied);
  EXPECT_FALSE(o.nonfinite);
  EXPECT_FALSE(o.nonfinite_limit);
  EXPECT_TRUE(std::isfinite(o.loss));
  EXPECT_EQ(o.loss_scale, LossScaling::kMax);
  EXPECT_EQ(st.loss_scale, LossScaling::kMax / 2);
  EXPECT_EQ(st.overflow_total, 1);
  EXPECT_EQ(st.nonfinite_consecutive, 0);  // an overflow is the scale's fault, not the run's
  EXPECT_EQ(st.step, 2);
  EXPECT_EQ(weights(*m), before);
  EXPECT_EQ(opt.steps_taken(), 1);
}

// Two micro-batches of 2 rows and one batch of the same 4 rows give the same step. Each
// micro-batch's loss is the mean over its own tokens and its backward runs at 1/2, so the mean
// and the gradient sum are the same quantities up to the order of fp32 additions (the 4 rows'
// contributions summed inside one product, or in two products and then one more addition): a few
// units of fp32 rounding (~1e-7) relative to each quantity, so 1e-5 leaves 100× room while a
// wrong weight (1 instead of 1/2), a gradient not zeroed or a micro-batch dropped is off by O(1).
// With clipping off, AdamW's first moment after one step is exactly 0.1 × the gradient: that
// compares the gradients themselves, every entry to 1e-5 of the largest (measured 2e-7).
TEST(TrainStep, TwoMicroBatchesMatchOneBatchOfTwiceTheSize) {
  auto be = make_backend("cpu");
  auto m_whole = stories(), m_micro = stories();
  auto whole = batch(*be, *m_whole, 0, 4);
  auto first = batch(*be, *m_micro, 0, 2), second = batch(*be, *m_micro, 2, 2);
  AdamWConfig oc;
  oc.warmup = 0;
  oc.clip = 0;
  AdamW opt_whole(*m_whole, oc), opt_micro(*m_micro, oc);
  StepPolicy policy;
  TrainState st_whole, st_micro;
  std::vector<Workspace*> one{whole.get()}, two{first.get(), second.get()};
  size_t n1 = 0, n2 = 0;
  MicroBatches b1 = from(one, n1), b2 = from(two, n2);
  const std::vector<float> start = weights(*m_whole);
  const StepResult a = train_step({*be, *m_whole, opt_whole}, policy, b1, st_whole);
  const StepResult c = train_step({*be, *m_micro, opt_micro}, policy, b2, st_micro);
  ASSERT_TRUE(a.applied && c.applied);
  EXPECT_EQ(n2, 2u);  // both micro-batches drawn
  constexpr double kRtol = 1e-5;
  EXPECT_NEAR(c.loss, a.loss, kRtol * a.loss);
  EXPECT_NEAR(c.grad_norm, a.grad_norm, kRtol * a.grad_norm);
  EXPECT_LE(max_abs_diff(opt_micro.m1(), opt_whole.m1()), kRtol * max_abs(opt_whole.m1()));
  // The weights after the step, as vectors: the same to 1e-5 of their norm (measured 4e-9; a
  // wrong gradient moves them by ~lr = 3e-4 per entry, ~1e-3 of it). Entry by entry the update
  // cannot be held to 1e-5 of itself: AdamW's first step is ~lr·g/|g|, so an entry whose
  // gradient is mostly cancellation (2 of 260K here, |g| ~ 1e-7) carries its rounding at 1e-3
  // relative into the update, and p + Δ rounds at ulp(p), up to 1e-4 of Δ.
  const std::vector<float> after_whole = weights(*m_whole), after_micro = weights(*m_micro);
  double diff = 0, norm = 0;
  for (size_t i = 0; i < start.size(); ++i) {
    diff += (double(after_micro[i]) - after_whole[i]) * (double(after_micro[i]) - after_whole[i]);
    norm += double(after_whole[i]) * after_whole[i];
  }
  EXPECT_LE(std::sqrt(diff), kRtol * std::sqrt(norm));
  EXPECT_NE(after_whole, start);
}

// fit-batch's loop follows the session's non-finite policy: a non-finite step is skipped (the
// weights as they were, the loss recorded as NaN), a good step resets the count, and
// max_nonfinite such steps in a row stop the run with the session's message.
TEST(TrainStep, FitBatchFollowsTheNonFinitePolicy) {
  auto be = make_backend("cpu");
  auto run = [&](std::vector<int64_t> nan_steps, int steps, std::vector<StepResult>& results,
                 std::vector<std::vector<float>>& snapshots) {
    auto m = stories();
    auto ws = batch(*be, *m, 0, 2);
    AdamWConfig oc;
    oc.warmup = 0;
    oc.lr = 1e-3;
    AdamW opt(*m, oc);
    StepPolicy policy;
    policy.scaling = loss_scaling_for(*be);
    policy.max_nonfinite = 2;
    policy.inject_nan = std::move(nan_steps);
    return fit_fixed_batch(*be, *m, opt, {ws.get()}, steps, policy, [&](int, const StepResult& r) {
      results.push_back(r);
      snapshots.push_back(weights(*m));
    });
  };

  std::vector<StepResult> r;
  std::vector<std::vector<float>> w;
  const std::vector<float> losses = run({2, 4}, 5, r, w);  // never two in a row: runs to the end
  ASSERT_EQ(losses.size(), 5u);
  ASSERT_EQ(r.size(), 5u);
  for (int s : {0, 2, 4}) {
    EXPECT_TRUE(r[s].applied) << s;
    EXPECT_TRUE(std::isfinite(losses[s])) << s;
  }
  for (int s : {1, 3}) {
    EXPECT_TRUE(r[s].nonfinite && !r[s].applied && !r[s].overflow && !r[s].nonfinite_limit) << s;
    EXPECT_TRUE(std::isnan(losses[s])) << s;
    EXPECT_EQ(w[s], w[s - 1]) << "the skipped step " << s << " changed the weights";
  }
  EXPECT_NE(w[2], w[1]);
  for (int s = 0; s < 5; ++s) EXPECT_EQ(r[s].step, s + 1);

  r.clear();
  w.clear();
  std::string error;
  try {
    run({2, 3}, 6, r, w);  // two in a row at max_nonfinite 2: stops after step 3
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("2 consecutive steps had a non-finite loss or gradient norm"), std::string::npos) << error;
  ASSERT_EQ(r.size(), 3u);
  EXPECT_FALSE(r[1].nonfinite_limit);
  EXPECT_TRUE(r[2].nonfinite_limit);
  EXPECT_EQ(w[2], w[0]);
}

// `grad` and the C API's backward: on an fp16 backend the largest scale from 2^16 down whose
// gradients are finite, unscaled; on fp32 backends scale 1 and exactly the plain backward.
TEST(TrainStep, ScaledForwardBackwardUnscalesItsGradients) {
  if (!built("ane-sim")) GTEST_SKIP() << "built without ane-sim";
  auto ane = make_backend("ane-sim"), cpu = make_backend("cpu");
  auto m = stories(), m_cpu = stories();
  auto ws = batch(*ane, *m, 0, 2), ws_cpu = batch(*cpu, *m_cpu, 0, 2);
  const ScaledGradients g = forward_backward_scaled(*ane, *m, *ws);
  const ScaledGradients g_cpu = forward_backward_scaled(*cpu, *m_cpu, *ws_cpu);
  EXPECT_EQ(g.scale, LossScaling::kInitial);
  EXPECT_EQ(g_cpu.scale, 1.0);
  EXPECT_NEAR(g.loss, g_cpu.loss, 1e-3 * g_cpu.loss);  // the bounds of the test above
  const double norm = grad_norm(*m), norm_cpu = grad_norm(*m_cpu);
  EXPECT_NEAR(norm, norm_cpu, 1e-2 * norm_cpu);
}

}  // namespace
}  // namespace anetrain::test
