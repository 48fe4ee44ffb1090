#include "gen/complete.h"

#include <algorithm>

#include "gen/decoder.h"

namespace anetrain {

std::string complete_text(Backend& be, const Model& m, const Tokenizer& tok, const std::string& prompt, int steps,
                          const SamplingParams& p, uint64_t seed) {
  std::vector<int32_t> ids = tok.encode(prompt, tok.bos_id() >= 0, false);
  if (ids.empty()) return "";
  const int ctx = m.cfg.max_seq_len;
  if (int(ids.size()) >= ctx) ids.resize(size_t(ctx - 1));
  const int budget = std::min(steps, ctx - int(ids.size()));
  if (budget <= 0) return "";
  Decoder dec(be, m, int(ids.size()) + budget);
  const float* logits = dec.feed(ids.data(), int(ids.size()));
  Rng rng(seed);
  std::vector<float> scratch;
  std::string text;
  int32_t prev = ids.back();
  for (int made = 0; made < budget; ++made) {
    const int32_t next = sample_token(logits, m.cfg.vocab_size, p, rng, scratch);
    if (next == tok.eos_id() || (next == tok.bos_id() && made > 0)) break;
    text += tok.decode_step(prev, next);
    prev = next;
    if (made + 1 < budget) logits = dec.feed(next);
  }
  return text;
}

}  // namespace anetrain
