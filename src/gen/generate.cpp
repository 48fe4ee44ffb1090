#include "gen/generate.h"

#include <algorithm>

#include "model/transformer.h"

namespace anetrain {

int generate_recompute(Backend& be, Model& m, std::vector<int32_t>& tokens, int steps, int max_ctx, int32_t eos_id,
                       const SamplingParams& p, uint64_t seed, const std::function<void(int32_t)>& on_token) {
  max_ctx = std::min(max_ctx, m.cfg.max_seq_len);
  Workspace ws(m.cfg, 1, max_ctx);
  Rng rng(seed);
  std::vector<float> scratch;
  int made = 0;
  while (made < steps && int(tokens.size()) < max_ctx) {
    // Positions past the context hold token 0; causality keeps them out of the logits we read.
    std::fill(ws.inputs.begin(), ws.inputs.end(), 0);
    std::fill(ws.targets.begin(), ws.targets.end(), 0);
    std::copy(tokens.begin(), tokens.end(), ws.inputs.begin());
    forward(be, m, ws);
    const int32_t next = sample_token(ws.logits + (tokens.size() - 1) * size_t(ws.logit_width), ws.logit_width, p,
                                      rng, scratch);
    tokens.push_back(next);
    ++made;
    on_token(next);
    if (next == eos_id) break;
  }
  return made;
}

}  // namespace anetrain
