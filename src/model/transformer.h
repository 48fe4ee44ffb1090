// The model's forward and backward pass for B sequences of T tokens, over any Backend.
//   x0 = E[inputs]; for each layer: x ← attention_block(x); x ← ffn_block(x)
//   logits = rmsnorm(x)·Wclsᵀ; loss = mean cross-entropy over the N = B·T positions
#pragma once
#include <cstdint>
#include <functional>

#include "contract/backend.h"
#include "model/model.h"
#include "model/workspace.h"

namespace anetrain {

// Reads ws.inputs / ws.targets; leaves logits and saved activations in ws; returns mean loss
// (with ws.loss_mask, the mean over the rows that count; 0 when none does).
// Throws Error if a token id is outside [0, V).
double forward(Backend& be, Model& m, Workspace& ws);

// Called during backward as parts of m.grads stop changing: `part` = n_layers for the head (final
// norm and an untied lm_head), l for layer l, -1 for the embedding (last: a tied embedding also
// takes the classifier's gradient). Data parallel training starts each part's all-reduce there.
using GradsFinal = std::function<void(int part)>;

// Accumulates grad_scale·∂(mean loss)/∂θ into m.grads (with a loss mask, of forward's masked
// mean: a batch where no row counts adds nothing) (grad_scale = 1/accum for accumulation),
// for the trainable tensors only: a frozen one's gradient is never computed.
// Must follow forward() on the same workspace.
void backward(Backend& be, Model& m, Workspace& ws, float grad_scale = 1.0f, const GradsFinal& on_final = {});

}  // namespace anetrain
