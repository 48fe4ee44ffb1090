// Text generation over the training forward pass: the whole (causal) context is recomputed for
// each new token — correct by construction, since position t's logits depend only on tokens ≤ t,
// and needing no KV cache. The quickstart's short sample uses it; gen/decoder.h is the fast path.
#pragma once
#include <functional>
#include <vector>

#include "gen/sampler.h"
#include "contract/backend.h"
#include "model/model.h"

namespace anetrain {

// Appends up to `steps` tokens to `tokens` (stopping at eos_id, or at max_ctx), calling
// on_token for each new one. Returns the number generated.
int generate_recompute(Backend& be, Model& m, std::vector<int32_t>& tokens, int steps, int max_ctx, int32_t eos_id,
                       const SamplingParams& p, uint64_t seed, const std::function<void(int32_t)>& on_token);

}  // namespace anetrain
