// A residual scale α (x + α·f(x), ModelConfig::residual_scale) folded into the weights that end
// each branch: Wo ← α·Wo and W_down ← α·W_down, after which the model is a standard Llama/Qwen3
// (residual_scale 1) that computes what it computed, up to one fp32 rounding per weight. Formats
// and readers without such a setting (GGUF and llama.cpp, llama2.c, Hugging Face transformers)
// get the folded model; the seed's version-4 runs trained with α = 1/√(2L).
#pragma once
#include "model/model.h"

namespace anetrain {

// In place; nothing happens when residual_scale is 1. Needs a model without adapters (merge them
// first: an adapter on Wo would otherwise be scaled by α twice or not at all).
void fold_residual_scale(Model& m);

}  // namespace anetrain
