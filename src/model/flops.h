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

class ParamTable;
// The matrix products one training step needs over `rows` tokens of `seq_len`-long windows, of
// which `classifier_rows` reach the classifier (all of them, or the targets a loss mask counts: the
// classifier runs on those rows alone): the forward, every layer's input gradient, and weight
// gradients of the trainable matrices only — a LoRA run's frozen base has none, its adapters are
// counted like any matrix. The classifier is c.vocab_size rows (a compacted vocabulary's size).
// Recomputation (--recompute) is not counted: it is the implementation's work, not the model's.
// With every tensor trainable and every row counted this is FlopCount::training() × rows.
double training_step_flops(const ParamTable& table, const ModelConfig& c, int seq_len, double rows,
                           double classifier_rows);

}  // namespace anetrain
