#include "train/loss_scaler.h"

#include <algorithm>
#include <cmath>

#include "model/model.h"
#include "train/checkpoint.h"

namespace anetrain {

double begin_loss_scaling(const LossScaling& ls, TrainState& st) {
  if (!ls.enabled) {
    st.loss_scale = 1.0;  // an fp16 run resumed on an fp32 backend
    return 1.0;
  }
  // A fresh run, or one that was trained on an fp32 backend until now.
  if (st.loss_scale <= 1.0 && st.loss_scale_clean == 0 && st.overflow_total == 0) st.loss_scale = ls.initial;
  return st.loss_scale;
}

StepOutcome end_loss_scaled_step(const LossScaling& ls, TrainState& st, double loss, double scaled_norm) {
  if (!std::isfinite(loss)) return StepOutcome::nonfinite_loss;
  if (!std::isfinite(scaled_norm)) {
    if (!ls.enabled) return StepOutcome::nonfinite_loss;  // no scale to blame: the ordinary policy
    st.loss_scale = std::max(st.loss_scale / 2, LossScaling::kMin);
    st.loss_scale_clean = 0;
    ++st.overflow_total;
    return StepOutcome::overflow;
  }
  if (ls.enabled && ++st.loss_scale_clean >= ls.window) {
    st.loss_scale = std::min(st.loss_scale * 2, LossScaling::kMax);
    st.loss_scale_clean = 0;
  }
  return StepOutcome::applied;
}

void scale_grads(Model& m, double factor) {
  const float f = float(factor);
  float* g = m.grads.data();
  const size_t n = m.grads.size();
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) g[i] *= f;
}

}  // namespace anetrain
