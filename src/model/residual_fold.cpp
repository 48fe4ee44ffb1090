#include "model/residual_fold.h"

#include "core/error.h"

namespace anetrain {

void fold_residual_scale(Model& m) {
  const double alpha = m.cfg.residual_scale;
  if (alpha == 1.0) return;
  if (m.cfg.lora.rank > 0) fail("fold_residual_scale: merge the adapters first");
  for (const ParamSpec& s : m.table.specs()) {
    if (s.role != ParamRole::wo && s.role != ParamRole::w_down) continue;
    float* w = m.param(s);
    // The product in double, rounded once: the nearest fp32 to α·W.
    for (size_t i = 0; i < s.numel(); ++i) w[i] = float(alpha * double(w[i]));
  }
  m.cfg.residual_scale = 1.0;
  m.touch();
}

}  // namespace anetrain
