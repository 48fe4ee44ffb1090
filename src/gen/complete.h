// A text completion from a model's current weights: the prompt (with BOS when the tokenizer has
// one) fed to a KV-cache Decoder, then up to `steps` tokens, greedy at temperature 0 or sampled
// with a fixed seed — what the trainer's `sample` events show, reproducible for a given step.
#pragma once
#include <cstdint>
#include <string>

#include "gen/sampler.h"
#include "contract/backend.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace anetrain {

// The generated text only (without the prompt); stops at EOS or the model's context.
std::string complete_text(Backend& be, const Model& m, const Tokenizer& tok, const std::string& prompt, int steps,
                          const SamplingParams& p, uint64_t seed);

}  // namespace anetrain
