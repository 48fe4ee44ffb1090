// Incremental inference with a KV cache, over the same kernel contract as training: each layer
// runs the attention_block_decode stage (its default is composed of the training ops plus
// attention_cached_fwd) and the training ffn_block_fwd stage, so there is no second model
// implementation to drift. A prompt is fed in chunks; each later token costs one position.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/backend.h"
#include "model/model.h"

namespace anetrain {

class Decoder {
 public:
  // max_ctx ≤ the model's max_seq_len; prompts are processed max_chunk tokens at a time.
  Decoder(Backend& be, const Model& m, int max_ctx, int max_chunk = 64);
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Appends tokens at the current position and returns the logits (V floats) after the last one.
  // Throws Error when the context would exceed max_ctx or a token is out of range.
  const float* feed(const int32_t* tokens, int n);
  const float* feed(int32_t token) { return feed(&token, 1); }
  int position() const { return pos_; }
  int max_ctx() const { return max_ctx_; }
  void reset() { pos_ = 0; }

 private:
  Backend& be_;
  const Model& m_;
  int max_ctx_, max_chunk_, pos_ = 0;
  std::vector<float> arena_;
  std::vector<KvCacheLayer> cache_;
  AttentionSaved attn_{};
  FfnSaved ffn_{};
  float *x_, *x2_, *scores_, *xf_, *rstd_, *logits_;
};

}  // namespace anetrain
