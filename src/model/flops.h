// FLOP accounting used by `info`, telemetry and bench. A multiply-add counts as 2 FLOPs.
#pragma once
#include <cstdint>

#include "model/config.h"

namespace anetrain {

struct FlopCount {
  double matmul_fwd;     // per token: 2 × (every projection + classifier weight)
  double attention_fwd;  // per token: QKᵀ and P·V over the average causal context (T+1)/2
  double forward() const { return matmul_fwd + attention_fwd; }
  double training() const { return 3.0 * forward(); }  // backward ≈ 2× forward (dX and dW)
};

FlopCount flops_per_token(const ModelConfig& c, int seq_len);

}  // namespace anetrain
