#include "gen/decoder.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace anetrain {

Decoder::Decoder(Backend& be, const Model& m, int max_ctx, int max_chunk)
    : be_(be), m_(&m), cfg_(m.cfg), max_ctx_(std::min(max_ctx, m.cfg.max_seq_len)),
      max_chunk_(std::max(1, max_chunk)) {
  plan();
}

Decoder::Decoder(Backend& be, const PackedModel& m, int max_ctx, int max_chunk)
    : be_(be), pm_(&m), cfg_(m.cfg), max_ctx_(std::min(max_ctx, m.cfg.max_seq_len)),
      max_chunk_(std::max(1, max_chunk)) {
  for (int l = 0; l < cfg_.n_layers; ++l) {
    PackedLayerWeights L{};
    L.attn_norm = m.gain(ParamRole::attn_norm, l);
    L.ffn_norm = m.gain(ParamRole::ffn_norm, l);
    L.q_norm = m.gain(ParamRole::q_norm, l);
    L.k_norm = m.gain(ParamRole::k_norm, l);
    L.qkv[0] = m.at(ParamRole::wq, l);
    L.qkv[1] = m.at(ParamRole::wk, l);
    L.qkv[2] = m.at(ParamRole::wv, l);
    L.wo = m.at(ParamRole::wo, l);
    L.gate_up[0] = m.at(ParamRole::w_gate, l);
    L.gate_up[1] = m.at(ParamRole::w_up, l);
    L.down = m.at(ParamRole::w_down, l);
    layers_.push_back(L);
  }
  plan();
}

void Decoder::plan() {
  const ModelConfig& c = cfg_;
  const size_t C = size_t(max_chunk_), D = c.dim, kvd = c.kv_dim();
  const size_t ctx = size_t(max_ctx_);
  arena_.plan([&](const TakeFloats& take) {
    cache_.assign(c.n_layers, KvCacheLayer{});
    for (auto& l : cache_) l = KvCacheLayer{take(ctx * kvd), take(ctx * kvd), max_ctx_};
    x_ = take(C * D);
    x2_ = take(C * D);
    const BlockDims chunk = block_dims(c, 1, max_chunk_);
    attn_ = plan_attention_saved(take, chunk, false);
    ffn_ = plan_ffn_saved(take, chunk);
    scores_ = take(size_t(c.n_heads) * C * ctx);
    xf_ = take(D);
    rstd_ = take(1);
    logits_ = take(size_t(c.vocab_size));
  });
}

void Decoder::layers_with_stages(const BlockDims& dims) {
  BlockDims d = dims;
  for (int l = 0; l < cfg_.n_layers; ++l) {
    d.layer = l;
    be_.attention_block_decode(d, m_->w.layers[l], x_, x2_, cache_[l], pos_, attn_, scores_);
    be_.ffn_block_fwd(d, m_->w.layers[l], x2_, x_, ffn_);
  }
}

void Decoder::layers_packed(const BlockDims& dims) {
  BlockDims d = dims;
  for (int l = 0; l < cfg_.n_layers; ++l) {
    d.layer = l;
    be_.decode_layer_packed(d, layers_[size_t(l)], x_, x2_, cache_[size_t(l)], pos_, attn_, ffn_, scores_);
  }
}

const float* Decoder::feed(const int32_t* tokens, int n) {
  const ModelConfig& c = cfg_;
  if (n <= 0) fail("decoder: nothing to feed");
  if (pos_ + n > max_ctx_)
    fail("context full: " + std::to_string(pos_ + n) + " tokens exceed the context of " + std::to_string(max_ctx_));
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      fail("token id " + std::to_string(tokens[i]) + " is outside the vocabulary of " + std::to_string(c.vocab_size));
  for (int done = 0; done < n;) {
    const int T = std::min(max_chunk_, n - done);
    const BlockDims d = block_dims(c, 1, T);
    if (m_) {
      be_.sync_weights({m_->params.data(), m_->params.size(), m_->version});
      if (!decode_prepared_) {
        // Every layer's one-token programs before the first token: a backend that compiles them
        // learns about every rejection at once (and falls back, or refuses, before any output).
        BlockDims one = block_dims(c, 1, 1);
        if (CompiledPrograms* programs = be_.caps().programs)
          for (int l = 0; l < c.n_layers; ++l) {
            one.layer = l;
            programs->prepare_decoding(one, m_->w.layers[l]);
          }
        decode_prepared_ = true;
      }
      be_.embedding_fwd(tokens + done, m_->w.embedding, x_, T, c.dim);
      layers_with_stages(d);
    } else {
      for (int t = 0; t < T; ++t) dequantize_row(pm_->at(ParamRole::embedding), tokens[done + t], x_ + size_t(t) * c.dim);
      layers_packed(d);
    }
    pos_ += T;
    done += T;
    if (done == n) {
      // Only the last position's logits are needed.
      const float* last = x_ + size_t(T - 1) * c.dim;
      if (m_) {
        be_.rmsnorm_fwd(last, m_->w.final_norm, xf_, rstd_, 1, c.dim, float(c.norm_eps));
        be_.linear_fwd(xf_, m_->w.classifier, logits_, 1, c.dim, c.vocab_size);
      } else {
        be_.rmsnorm_fwd(last, pm_->gain(ParamRole::final_norm), xf_, rstd_, 1, c.dim, float(c.norm_eps));
        float* out[1] = {logits_};
        be_.linear_fwd_packed(xf_, 1, &pm_->classifier(), out, 1);
      }
    }
  }
  return logits_;
}

}  // namespace anetrain
