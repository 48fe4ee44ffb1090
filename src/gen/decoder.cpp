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
    PackedLayer L{};
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
  // One allocation, planned as in Workspace: count first, then hand out slices.
  size_t cursor = 0;
  float* base = nullptr;
  auto take = [&](size_t n) -> float* {
    float* p = base ? base + cursor : nullptr;
    cursor += (n + 15) & ~size_t(15);
    return p;
  };
  auto slices = [&] {
    cursor = 0;
    cache_.assign(c.n_layers, KvCacheLayer{});
    for (auto& l : cache_) l = KvCacheLayer{take(ctx * kvd), take(ctx * kvd), max_ctx_};
    x_ = take(C * D);
    x2_ = take(C * D);
    const BlockDims chunk = BlockDims::from(c, 1, max_chunk_);
    attn_ = plan_attention_saved(take, chunk, false);
    ffn_ = plan_ffn_saved(take, chunk);
    scores_ = take(size_t(c.n_heads) * C * ctx);
    xf_ = take(D);
    rstd_ = take(1);
    logits_ = take(size_t(c.vocab_size));
  };
  slices();
  arena_.assign(cursor + 16, 0.0f);
  base = arena_.data();
  slices();
}

void Decoder::layers_with_stages(const BlockDims& dims) {
  BlockDims d = dims;
  for (int l = 0; l < cfg_.n_layers; ++l) {
    d.layer = l;
    be_.attention_block_decode(d, m_->w.layers[l], x_, x2_, cache_[l], pos_, attn_, scores_);
    be_.ffn_block_fwd(d, m_->w.layers[l], x2_, x_, ffn_);
  }
}

// Backend::attention_block_decode and ffn_block_fwd's composition, with packed products.
void Decoder::layers_packed(const BlockDims& d, int T) {
  const int kvd = d.Hkv * d.hd;
  AttentionSaved& s = attn_;
  for (int l = 0; l < cfg_.n_layers; ++l) {
    const PackedLayer& w = layers_[size_t(l)];
    KvCacheLayer& cache = cache_[size_t(l)];
    be_.rmsnorm_fwd(x_, w.attn_norm, s.xn, s.rstd, T, d.D, d.eps);
    float* k_new = cache.k + size_t(pos_) * kvd;  // new keys/values go straight into the cache
    float* v_new = cache.v + size_t(pos_) * kvd;
    float* q_out[3] = {d.qk_norm ? s.q_raw : s.q, d.qk_norm ? s.k_raw : k_new, v_new};
    be_.linear_fwd_packed(s.xn, T, w.qkv, q_out, 3);
    if (d.qk_norm) {
      be_.rmsnorm_fwd(s.q_raw, w.q_norm, s.q, s.q_rstd, T * d.Hq, d.hd, d.eps);
      be_.rmsnorm_fwd(s.k_raw, w.k_norm, k_new, s.k_rstd, T * d.Hkv, d.hd, d.eps);
    }
    be_.rope_fwd(s.q, 1, T, d.Hq, d.hd, pos_, d.rope, d.theta);
    be_.rope_fwd(k_new, 1, T, d.Hkv, d.hd, pos_, d.rope, d.theta);
    be_.attention_cached_fwd(s.q, cache.k, cache.v, s.attn, scores_, pos_, T, d.Hq, d.Hkv, d.hd);
    float* o_out[1] = {s.o};
    be_.linear_fwd_packed(s.attn, T, &w.wo, o_out, 1);
    be_.residual_fwd(x_, s.o, d.alpha, x2_, size_t(T) * d.D);

    FfnSaved& f = ffn_;
    be_.rmsnorm_fwd(x2_, w.ffn_norm, f.xn, f.rstd, T, d.D, d.eps);
    float* gu_out[2] = {f.g, f.u};
    be_.linear_fwd_packed(f.xn, T, w.gate_up, gu_out, 2);
    be_.swiglu_fwd(f.g, f.u, f.h, size_t(T) * d.F);
    float* f_out[1] = {f.f};
    be_.linear_fwd_packed(f.h, T, &w.down, f_out, 1);
    be_.residual_fwd(x2_, f.f, d.alpha, x_, size_t(T) * d.D);
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
    const BlockDims d = BlockDims::from(c, 1, T);
    if (m_) {
      be_.sync_weights({m_->params.data(), m_->params.size(), m_->version});
      be_.embedding_fwd(tokens + done, m_->w.embedding, x_, T, c.dim);
      layers_with_stages(d);
    } else {
      for (int t = 0; t < T; ++t) dequantize_row(pm_->at(ParamRole::embedding), tokens[done + t], x_ + size_t(t) * c.dim);
      layers_packed(d, T);
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
