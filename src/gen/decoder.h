// Incremental inference with a KV cache, over the same kernel contract as training. Two weight
// sources, one sequence of ops:
//   - a Model (fp32): each layer runs the attention_block_decode stage and the training
//     ffn_block_fwd stage, so a backend's fused stages (the ANE's programs) decode too;
//   - a PackedModel (fp32, bf16 or Q8_0 matrices): each layer runs the decode_layer_packed stage,
//     whose default is the same composition with the products as linear_fwd_packed — Q, K and V
//     in one product, gate and up in one — on the stored format (the cpu backend fuses it).
// A test holds the two paths to each other on fp32 weights. A prompt is fed in chunks; each
// later token costs one position.
#pragma once
#include <cstdint>
#include <vector>

#include "contract/backend.h"
#include "model/arena.h"
#include "model/model.h"
#include "model/packed_model.h"

namespace anetrain {

class Decoder {
 public:
  // max_ctx ≤ the model's max_seq_len; prompts are processed max_chunk tokens at a time.
  Decoder(Backend& be, const Model& m, int max_ctx, int max_chunk = 64);
  Decoder(Backend& be, const PackedModel& m, int max_ctx, int max_chunk = 64);
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
  void plan();
  void layers_with_stages(const BlockDims& d);
  void layers_packed(const BlockDims& d);

  Backend& be_;
  const Model* m_ = nullptr;         // the stage path
  const PackedModel* pm_ = nullptr;  // the packed path
  const ModelConfig& cfg_;
  int max_ctx_, max_chunk_, pos_ = 0;
  bool decode_prepared_ = false;  // the backend compiled every layer's one-token programs
  std::vector<PackedLayerWeights> layers_;
  PlannedArena arena_;
  std::vector<KvCacheLayer> cache_;
  AttentionSaved attn_{};
  FfnSaved ffn_{};
  float *x_, *x2_, *scores_, *xf_, *rstd_, *logits_;
};

}  // namespace anetrain
