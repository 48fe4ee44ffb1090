// A backend made of another: every call goes to `host` until a derived class overrides it. An
// accelerator that runs some stages itself (the ANE's programs) derives from it and leaves the
// ops, the other stages and its fallbacks to a host it was given, instead of inheriting one
// backend's class. The host's stages call the host's own ops, so what the host computes is
// exactly what it computes on its own.
#pragma once
#include <memory>
#include <string>
#include <utility>

#include "contract/backend.h"

namespace anetrain {

class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(std::unique_ptr<Backend> host) : host_(std::move(host)) {}
  Backend& host() { return *host_; }
  const Backend& host() const { return *host_; }

  std::string name() const override { return host_->name(); }
  Capabilities caps() override { return host_->caps(); }
  void sync_weights(const WeightsView& w) override { host_->sync_weights(w); }

  void linear_fwd(const float* x, const float* W, float* y, int N, int in, int out) override {
    host_->linear_fwd(x, W, y, N, in, out);
  }
  void linear_bwd_x(const float* dy, const float* W, float* dx, int N, int in, int out, bool accumulate) override {
    host_->linear_bwd_x(dy, W, dx, N, in, out, accumulate);
  }
  void linear_bwd_w(const float* dy, const float* x, float* dW, int N, int in, int out) override {
    host_->linear_bwd_w(dy, x, dW, N, in, out);
  }
  void embedding_fwd(const int32_t* tokens, const float* E, float* y, int N, int D) override {
    host_->embedding_fwd(tokens, E, y, N, D);
  }
  void embedding_bwd(const int32_t* tokens, const float* dy, float* dE, int N, int D) override {
    host_->embedding_bwd(tokens, dy, dE, N, D);
  }
  void rmsnorm_fwd(const float* x, const float* w, float* y, float* rstd, int N, int D, float eps) override {
    host_->rmsnorm_fwd(x, w, y, rstd, N, D, eps);
  }
  void rmsnorm_bwd(const float* dy, const float* x, const float* w, const float* rstd, float* dx_acc, float* dw_acc,
                   int N, int D) override {
    host_->rmsnorm_bwd(dy, x, w, rstd, dx_acc, dw_acc, N, D);
  }
  void rope_fwd(float* x, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) override {
    host_->rope_fwd(x, B, T, H, hd, pos0, style, theta);
  }
  void rope_bwd(float* dx, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) override {
    host_->rope_bwd(dx, B, T, H, hd, pos0, style, theta);
  }
  void attention_fwd(const float* q, const float* k, const float* v, float* out, float* probs,
                     const AttnShape& s) override {
    host_->attention_fwd(q, k, v, out, probs, s);
  }
  void attention_bwd(const float* dout, const float* q, const float* k, const float* v, const float* probs, float* dq,
                     float* dk, float* dv, float* dprobs, const AttnShape& s) override {
    host_->attention_bwd(dout, q, k, v, probs, dq, dk, dv, dprobs, s);
  }
  bool attention_flash(const AttnShape& s) const override { return host_->attention_flash(s); }
  void attention_flash_fwd(const float* q, const float* k, const float* v, float* out, float* lse,
                           const AttnShape& s) override {
    host_->attention_flash_fwd(q, k, v, out, lse, s);
  }
  void attention_flash_bwd(const float* dout, const float* q, const float* k, const float* v, const float* out,
                           const float* lse, float* dq, float* dk, float* dv, const AttnShape& s) override {
    host_->attention_flash_bwd(dout, q, k, v, out, lse, dq, dk, dv, s);
  }
  void attention_cached_fwd(const float* q, const float* k_cache, const float* v_cache, float* out, float* scores,
                            int pos0, int Tn, int Hq, int Hkv, int hd) override {
    host_->attention_cached_fwd(q, k_cache, v_cache, out, scores, pos0, Tn, Hq, Hkv, hd);
  }
  void swiglu_fwd(const float* g, const float* u, float* h, size_t n) override { host_->swiglu_fwd(g, u, h, n); }
  void swiglu_bwd(const float* dh, const float* g, const float* u, float* dg, float* du, size_t n) override {
    host_->swiglu_bwd(dh, g, u, dg, du, n);
  }
  void residual_fwd(const float* x, const float* f, float alpha, float* y, size_t n) override {
    host_->residual_fwd(x, f, alpha, y, n);
  }
  void residual_bwd(const float* dy, float alpha, float* df, size_t n) override { host_->residual_bwd(dy, alpha, df, n); }
  void cross_entropy_fwd(const float* logits, const int32_t* targets, float* losses, int N, int V) override {
    host_->cross_entropy_fwd(logits, targets, losses, N, V);
  }
  void cross_entropy_bwd(const float* logits, const int32_t* targets, float scale, float* dlogits, int N,
                         int V) override {
    host_->cross_entropy_bwd(logits, targets, scale, dlogits, N, V);
  }
  void linear_fwd_packed(const float* x, int N, const MatrixRef* W, float* const* y, int parts) override {
    host_->linear_fwd_packed(x, N, W, y, parts);
  }

  size_t classifier_scratch_floats(int N, int V) const override { return host_->classifier_scratch_floats(N, V); }
  void classifier_loss_fwd(const float* xf, const float* W, const int32_t* targets, float* losses, float* lse,
                           float* scratch, int N, int D, int V) override {
    host_->classifier_loss_fwd(xf, W, targets, losses, lse, scratch, N, D, V);
  }
  void classifier_loss_bwd(const float* xf, const float* W, const int32_t* targets, const float* lse, float scale,
                           float* dxf, float* dW, float* scratch, int N, int D, int V) override {
    host_->classifier_loss_bwd(xf, W, targets, lse, scale, dxf, dW, scratch, N, D, V);
  }
  void attention_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                           AttentionSaved& s) override {
    host_->attention_block_fwd(d, w, x, out, s);
  }
  void attention_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                           const AttentionSaved& s, const float* dout, float* dx, AttentionScratch& k) override {
    host_->attention_block_bwd(d, w, g, x, s, dout, dx, k);
  }
  void ffn_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out, FfnSaved& s) override {
    host_->ffn_block_fwd(d, w, x, out, s);
  }
  void ffn_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                     const FfnSaved& s, const float* dout, float* dx, FfnScratch& k) override {
    host_->ffn_block_bwd(d, w, g, x, s, dout, dx, k);
  }
  void attention_block_decode(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                              KvCacheLayer& cache, int pos0, AttentionSaved& s, float* scores) override {
    host_->attention_block_decode(d, w, x, out, cache, pos0, s, scores);
  }
  void decode_layer_packed(const BlockDims& d, const PackedLayerWeights& w, float* x, float* x2, KvCacheLayer& cache,
                           int pos0, AttentionSaved& s, FfnSaved& f, float* scores) override {
    host_->decode_layer_packed(d, w, x, x2, cache, pos0, s, f, scores);
  }

 private:
  std::unique_ptr<Backend> host_;
};

}  // namespace anetrain
