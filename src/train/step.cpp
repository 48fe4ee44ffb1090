#include "train/step.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "contract/backend.h"
#include "core/dropout_mask.h"
#include "core/error.h"
#include "dist/comm.h"
#include "dist/grad_sync.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"
#include "train/adapter_dropout.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"

namespace anetrain {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

bool listed(const std::vector<int64_t>& steps, int64_t step) {
  return std::find(steps.begin(), steps.end(), step) != steps.end();
}

// Each micro-batch's count of targets that count, from its windows' masks; fills the step's
// totals in `r`.
std::vector<int64_t> micro_batch_counts(MicroBatches& batches, int micro, StepResult& r) {
  const std::vector<uint32_t> windows = batches.window_counts(micro);
  if (windows.empty() || windows.size() % size_t(micro))
    fail("train step: " + std::to_string(windows.size()) + " window counts for " + std::to_string(micro) +
         " micro-batches");
  const size_t per = windows.size() / size_t(micro);
  std::vector<int64_t> counts(size_t(micro), 0);
  r.counted_targets = 0;
  for (size_t i = 0; i < windows.size(); ++i) {
    counts[i / per] += windows[i];
    r.counted_targets += windows[i];
    r.empty_windows += windows[i] == 0;
  }
  for (int64_t c : counts) r.empty_micro_batches += c == 0;
  return counts;
}

}  // namespace

LossScaling loss_scaling_for(Backend& be) {
  LossScaling ls;
  ls.enabled = be.caps().numerics.fp16;
  return ls;
}

StepResult train_step(const StepContext& ctx, const StepPolicy& policy, MicroBatches& batches, TrainState& st) {
  Model& m = ctx.model;
  const auto t_step = Clock::now();
  const int rank = ctx.comm ? ctx.comm->rank() : 0, ranks = ctx.comm ? ctx.comm->size() : 1;
  const int64_t step_no = st.step + 1;
  StepResult r;
  m.zero_grads();
  double loss = 0;
  const double scale = st.loss_scale;
  const int accum = batches.per_rank, micro = accum * ranks;
  const std::vector<int64_t> counts = batches.window_counts ? micro_batch_counts(batches, micro, r) : std::vector<int64_t>{};
  for (int g = 0; g < micro; ++g) {
    if (g / accum != rank) {
      batches.skip();
      continue;
    }
    auto t = Clock::now();
    Workspace& ws = batches.next();
    r.data_ms += ms_since(t);
    ws.classifier_ms = 0;
    // With masks a micro-batch weighs its share of the step's counted targets, so the step's
    // gradient is that of the mean over all of them.
    const bool masked = !counts.empty();
    if (masked && ws.counted_rows() != counts[size_t(g)])
      fail("train step: micro-batch " + std::to_string(g) + " has " + std::to_string(ws.counted_rows()) +
           " counted targets, its windows' masks said " + std::to_string(counts[size_t(g)]));
    // Alone, a micro-batch with nothing to count needs no pass; with ranks its backward still
    // marks the gradient parts final.
    if (masked && counts[size_t(g)] == 0 && !ctx.sync) continue;
    const double weight = masked ? (r.counted_targets > 0 ? double(counts[size_t(g)]) / double(r.counted_targets) : 0.0)
                                 : 1.0 / micro;
    // Dropout's mask depends on the micro-batch's place in the step alone (g counts every rank's).
    const AdapterDropoutScope dropout(m, ws, policy.lora_dropout,
                                      dropout_micro_batch_key(policy.dropout_seed, step_no, g));
    t = Clock::now();
    loss += masked ? forward(ctx.backend, m, ws) * weight : forward(ctx.backend, m, ws) / micro;
    r.forward_ms += ms_since(t);
    t = Clock::now();
    // The last of this rank's micro-batches finishes each part of the gradients: its sum across
    // ranks starts while the backward pass goes on to the layers before it.
    GradsFinal on_final;
    if (ctx.sync && g % accum == accum - 1) on_final = [&](int part) { ctx.sync->part_final(m, part); };
    else if (ctx.sync) on_final = [&](int) { ctx.sync->progress(); };
    backward(ctx.backend, m, ws, masked ? float(scale * weight) : float(scale / micro), on_final);
    r.backward_ms += ms_since(t);
    r.classifier_ms += ws.classifier_ms;
  }
  if (ctx.sync) r.allreduce_ms = ctx.sync->finish(m, "the gradient sum of step " + std::to_string(step_no));
  if (listed(policy.inject_nan, step_no)) loss = NAN;
  if (listed(policy.inject_overflow, step_no)) m.grads[0] = INFINITY;
  const auto t_opt = Clock::now();
  double scaled_norm = grad_norm(m);
  r.stop = ctx.stop_requested && ctx.stop_requested();
  if (ranks > 1) {
    // One exchange per step: the losses to sum, whether any rank was asked to stop, timings for
    // rank 0's telemetry, and rank 0's gradient norm — which every rank then uses, so that the
    // clipping (and with it the update) is identical even where thread counts differ.
    constexpr int kFields = 5;
    const double mine[kFields] = {loss, r.stop ? 1.0 : 0.0, r.forward_ms + r.backward_ms, r.allreduce_ms, scaled_norm};
    std::vector<double> all(size_t(kFields) * size_t(ranks));
    ctx.comm->allgather(mine, kFields, all.data(), "the loss exchange of step " + std::to_string(step_no));
    loss = 0;
    for (int k = 0; k < ranks; ++k) {
      const double* f = &all[size_t(k) * kFields];
      loss += f[0];
      r.stop |= f[1] != 0;
      r.ranks.push_back({f[2], f[3]});
    }
    scaled_norm = all[4];
  }
  // No counted target anywhere in the step: nothing to learn, the weights and the scale stay.
  r.no_targets = r.counted_targets == 0;
  if (!r.no_targets) {
    const StepOutcome outcome = end_loss_scaled_step(policy.scaling, st, loss, scaled_norm);
    r.applied = outcome == StepOutcome::applied;
    r.overflow = outcome == StepOutcome::overflow;
    r.nonfinite = !r.applied && !r.overflow;
  }
  // Unscaled before clipping, so the optimizer sees what an fp32 backend would give it.
  const double norm = scaled_norm / scale;
  if (r.applied) {
    if (scale != 1.0) scale_grads(m, 1.0 / scale);
    ctx.optimizer.step_with_norm(m, norm, ctx.backend);
    st.nonfinite_consecutive = 0;
  } else if (r.nonfinite) {
    // Skipped, the weights as they were; the next step draws new windows and may be fine.
    ++st.nonfinite_consecutive;
    ++st.nonfinite_total;
  }
  r.optimizer_ms = ms_since(t_opt);
  st.step = step_no;
  if (r.applied) st.last_loss = loss;
  r.step = step_no;
  r.loss = loss;
  r.grad_norm = norm;
  r.lr = lr_at(ctx.optimizer.config(), step_no - 1);
  r.loss_scale = scale;
  r.nonfinite_limit = r.nonfinite && st.nonfinite_consecutive >= policy.max_nonfinite;
  r.ms = ms_since(t_step);
  return r;
}

std::string nonfinite_limit_message(const TrainState& st, int max_nonfinite) {
  return "training stopped: " + std::to_string(st.nonfinite_consecutive) +
         " consecutive steps had a non-finite loss or gradient norm (limit --max-nonfinite " +
         std::to_string(max_nonfinite) + ")";
}

ScaledGradients forward_backward_scaled(Backend& be, Model& m, Workspace& ws) {
  ScaledGradients r;
  r.loss = forward(be, m, ws);
  const LossScaling ls = loss_scaling_for(be);
  double scale = ls.enabled ? ls.initial : 1.0;
  for (;;) {
    m.zero_grads();
    backward(be, m, ws, float(scale));
    if (scale <= 1.0 || std::isfinite(grad_norm(m))) break;
    scale /= 2;
  }
  if (scale != 1.0) scale_grads(m, 1.0 / scale);
  r.scale = scale;
  return r;
}

std::vector<float> fit_fixed_batch(Backend& be, Model& m, AdamW& opt, const std::vector<Workspace*>& micro, int steps,
                                   const StepPolicy& policy,
                                   const std::function<void(int, const StepResult&)>& on_step) {
  TrainState st;
  begin_loss_scaling(policy.scaling, st);
  size_t next = 0;
  MicroBatches batches;
  batches.per_rank = int(micro.size());
  batches.next = [&]() -> Workspace& { return *micro[next++ % micro.size()]; };
  // Masked micro-batches weigh their counted targets, as the session's do.
  if (std::any_of(micro.begin(), micro.end(), [](const Workspace* w) { return !w->loss_mask.empty(); }))
    batches.window_counts = [&](int) {
      std::vector<uint32_t> counts;
      for (const Workspace* w : micro)
        for (int b = 0; b < w->B; ++b) {
          uint32_t n = 0;
          for (int t = 0; t < w->T; ++t) n += w->loss_mask.empty() || w->loss_mask[size_t(b) * w->T + t] ? 1 : 0;
          counts.push_back(n);
        }
      return counts;
    };
  const StepContext ctx{be, m, opt};
  std::vector<float> losses;
  for (int s = 0; s < steps; ++s) {
    const StepResult r = train_step(ctx, policy, batches, st);
    losses.push_back(float(r.loss));
    if (on_step) on_step(s, r);
    if (r.nonfinite_limit) fail(nonfinite_limit_message(st, policy.max_nonfinite) + "\nhint: lower --lr");
  }
  return losses;
}

}  // namespace anetrain
