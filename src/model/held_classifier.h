// The classifier stage over a classifier held in bf16 or Q8_0 (Model::held): the backend's
// classifier stage wants the whole V×D matrix in fp32 (622 MB for Qwen3's vocabulary), so this
// reads it a vocabulary chunk at a time into fp32 and runs the contract's linear ops on each,
// folding the chunks' logits into a running log-sum-exp per row — the same computation as the cpu
// backend's streamed classifier. The classifier is frozen: no dW.
#pragma once
#include <cstdint>

#include "contract/backend.h"
#include "model/model.h"

namespace anetrain {

// losses[n] = lse[n] − logit(n, targets[n]) and lse[n] for the M rows of xf (M, D).
void held_classifier_fwd(Backend& be, Model& m, const float* xf, const int32_t* targets, float* losses, float* lse,
                         int M);
// dxf (overwritten) = ∂(scale · Σ losses)/∂xf, from forward's lse.
void held_classifier_bwd(Backend& be, Model& m, const float* xf, const int32_t* targets, const float* lse, float scale,
                         float* dxf, int M);

}  // namespace anetrain
