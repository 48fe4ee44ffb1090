// Dynamic loss scaling for backends that compute in fp16 (Capabilities::numerics.fp16): the loss —
// and so every gradient — is multiplied by a power of two large enough that small gradients do
// not underflow fp16, and unscaled (exactly) before clipping, so the optimizer sees the numbers
// an fp32 backend would give. A step whose loss is finite but whose gradients overflowed is
// skipped and the scale halves; after `window` clean steps in a row it doubles again.
// The state lives in TrainState (and so in checkpoints): resume stays exact.
#pragma once
#include <cstdint>

namespace anetrain {

struct Model;
struct TrainState;

struct LossScaling {
  static constexpr double kInitial = 65536.0;  // 2^16: where a run (and `grad`'s search) starts
  bool enabled = false;
  double initial = kInitial;
  int window = 1000;         // clean steps before the scale doubles
  static constexpr double kMax = 16777216.0;      // 2^24
  static constexpr double kMin = 1.0 / 16777216;  // 2^-24
};

// The scale this step's backward uses (1 when scaling is off). Sets up a fresh or resumed state.
double begin_loss_scaling(const LossScaling& ls, TrainState& st);

enum class StepOutcome { applied, overflow, nonfinite_loss };
// Classifies the step from its loss and (scaled) gradient norm and moves the scale.
StepOutcome end_loss_scaled_step(const LossScaling& ls, TrainState& st, double loss, double scaled_norm);

// grads *= factor (a power of two: exact).
void scale_grads(Model& m, double factor);

}  // namespace anetrain
