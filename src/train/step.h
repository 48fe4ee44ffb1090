// One optimizer step, the same for every caller — the training session (`anetrain train` and the
// C API's trainer), fit-batch and bench train: the micro-batches with their gradients summed, the
// exchange between ranks, dynamic loss scaling on fp16 backends, the non-finite policy, clipping
// and the AdamW update. It writes no telemetry and no progress text: it returns what happened,
// and the caller reports it in its own way. `grad` and the C API's backward, which want gradients
// rather than an update, share the scaled forward and backward below.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "train/loss_scaler.h"

namespace anetrain {

class AdamW;
class Backend;
class Comm;
class GradSync;
struct Model;
struct TrainState;
struct Workspace;

// What the steps train, and with what; the same objects from one step to the next.
struct StepContext {
  StepContext(Backend& be, Model& m, AdamW& opt, Comm* ranks = nullptr, GradSync* sums = nullptr,
              std::function<bool()> stop = {})
      : backend(be), model(m), optimizer(opt), comm(ranks), sync(sums), stop_requested(std::move(stop)) {}
  Backend& backend;
  Model& model;
  AdamW& optimizer;
  Comm* comm;      // the ranks training together; null: this process alone
  GradSync* sync;  // with several ranks: sums the gradients across them
  // Read once per step, after the backward pass; with several ranks any rank's request stops all.
  std::function<bool()> stop_requested;
};

// How a step treats its numbers; fixed for a run.
struct StepPolicy {
  LossScaling scaling;     // enabled for fp16 backends (loss_scaling_for)
  int max_nonfinite = 20;  // consecutive non-finite steps (not fp16 overflows) before the run must stop
  std::vector<int64_t> inject_nan;       // testing hook: a NaN loss at these 1-based steps
  std::vector<int64_t> inject_overflow;  // testing hook: an infinite gradient at these steps
  // Adapter dropout (LoRA): each micro-batch drops adapter inputs with this probability, its mask
  // keyed by dropout_micro_batch_key(dropout_seed, step, the micro-batch's global index).
  double lora_dropout = 0;
  uint64_t dropout_seed = 0;
};

// Where a step's micro-batches come from. Each step draws ranks × per_rank of them in one global
// order; rank r trains on [r·per_rank, (r+1)·per_rank) and passes over the others', so N ranks see
// exactly the windows one process with N·per_rank micro-batches would.
struct MicroBatches {
  int per_rank = 1;
  std::function<Workspace&()> next;  // this rank's next micro-batch, in the workspace it returns
  std::function<void()> skip;        // another rank's micro-batch (only called with several ranks)
  // With loss masks: how many targets count in each window of the step's `micro` = ranks ×
  // per_rank micro-batches, in the global order (micro-batch g's windows are [g·B, (g+1)·B)),
  // read before they are drawn. Every rank sees the same counts, so each weighs its micro-batches
  // by count / the step's total without an exchange. Left empty: every target counts, as before.
  std::function<std::vector<uint32_t>(int micro)> window_counts;
};

struct RankTiming {
  double compute_ms = 0;    // its forward and backward passes
  double allreduce_ms = 0;  // its wait for the gradient sums the backward pass did not hide
};

struct StepResult {
  int64_t step = 0;        // optimizer steps completed, this one included (TrainState::step)
  double loss = 0;         // mean over every rank's micro-batches (with masks: over the targets
                           // that count); NaN when non-finite
  double grad_norm = 0;    // before clipping, unscaled; rank 0's on every rank
  double lr = 0;           // the schedule's rate at this step
  double loss_scale = 1;   // the scale this step's backward ran with (1: no scaling)
  bool applied = false;    // the update happened (finite loss and gradients)
  bool overflow = false;   // fp16 gradients overflowed: skipped, the scale halved
  bool nonfinite = false;  // a non-finite loss or gradient (not an overflow): skipped
  bool nonfinite_limit = false;  // max_nonfinite such steps in a row: the run must stop
  bool stop = false;       // a stop was requested (on any rank)
  // With loss masks (-1 / 0 without): the targets that counted, summed over every rank's
  // micro-batches; the windows and micro-batches in which none did (they contribute nothing). A
  // step where no target counts at all has nothing to learn from: no_targets, the update skipped.
  int64_t counted_targets = -1, empty_windows = 0, empty_micro_batches = 0;
  bool no_targets = false;
  double ms = 0, data_ms = 0, forward_ms = 0, backward_ms = 0, allreduce_ms = 0, optimizer_ms = 0,
         classifier_ms = 0;
  std::vector<RankTiming> ranks;  // with several ranks, each rank's (rank 0's telemetry reads them)
};

// The loss scaling a backend needs: on for fp16 backends, from LossScaling's initial scale.
LossScaling loss_scaling_for(Backend& be);

// One optimizer step. `st` carries what persists between steps (the step count, the loss scale,
// the non-finite counts, the last finite loss); begin_loss_scaling(policy.scaling, st) must have
// run once before the first step.
StepResult train_step(const StepContext& ctx, const StepPolicy& policy, MicroBatches& batches, TrainState& st);

// Why a run stopped at the non-finite limit (the caller adds its hint).
std::string nonfinite_limit_message(const TrainState& st, int max_nonfinite);

struct ScaledGradients {
  double loss = 0;
  double scale = 1;  // the loss scale the gradients were computed with (1 on fp32 backends)
};

// One forward and backward of ws's batch into m.grads (zeroed first). On fp16 backends, the
// training's loss scaling for one step: the largest power-of-two scale from LossScaling's initial
// one down whose gradients stay finite, then unscaled exactly; fp32 backends run once at scale 1.
ScaledGradients forward_backward_scaled(Backend& be, Model& m, Workspace& ws);

// `anetrain fit-batch`'s loop: `steps` train_steps over the same micro-batches, one process.
// Returns every step's loss (NaN where non-finite); throws Error at the non-finite limit.
// on_step (may be empty) sees each step's result, 0-based.
std::vector<float> fit_fixed_batch(Backend& be, Model& m, AdamW& opt, const std::vector<Workspace*>& micro, int steps,
                                   const StepPolicy& policy,
                                   const std::function<void(int, const StepResult&)>& on_step = {});

}  // namespace anetrain
