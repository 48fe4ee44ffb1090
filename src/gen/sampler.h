// Choosing the next token from logits: greedy (temperature 0), or temperature + top-k + top-p
// (nucleus) sampling with a seeded RNG, so a seed reproduces a sample exactly.
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace anetrain {

struct SamplingParams {
  float temperature = 0.8f;
  float top_p = 0.9f;  // 1 disables
  int top_k = 0;       // 0 disables
};

int32_t sample_token(const float* logits, int V, const SamplingParams& p, Rng& rng, std::vector<float>& scratch);

}  // namespace anetrain
