// Folding a model's low-rank adapters into its weights: W ← W + scale·B·A for every adapted
// projection, after which the model is a plain one (no adapters in its config or table) that
// computes, up to fp32 rounding of the sums, what the adapted model computed. Generation, export
// and `anetrain merge` go through it; training keeps the adapters separate.
#pragma once
#include "model/model.h"

namespace anetrain {

// In place; nothing happens for a model without adapters. Each merged weight is W + Σ_r in double,
// rounded once to fp32.
void merge_adapters(Model& m);

}  // namespace anetrain
