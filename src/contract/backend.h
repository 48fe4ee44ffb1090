// The kernel contract. Two levels:
//   ops    — one function per piece of math, each with its backward (linear, rmsnorm, rope, ...);
//   stages — whole blocks (attention block, FFN block; forward and backward). Each stage has a
//            default made of ops (contract/stages.cpp); a backend may override it with a fused
//            kernel, which is how the ANE runs a block as one MIL program.
// What a backend is beyond these — its precision, numerics, optional interfaces — is caps().
// Layout: fp32, row-major. N = B*T rows. Dimension letters: B,T,D,Hq,Hkv,hd,F,V.
// Gradient convention: parameter gradients accumulate (+=) so micro-batches sum; activation
// gradients overwrite unless the argument is called *_acc.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "contract/capabilities.h"
#include "contract/packed.h"
#include "contract/stages.h"

namespace anetrain {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // What the backend is and which optional interfaces it has (contract/capabilities.h).
  virtual Capabilities caps() = 0;
  // Called by forward(), backward() and the decoder before they run. A backend that keeps derived
  // copies of the weights (the ANE's staged inputs, cpu-bf16's bf16 copy) rebuilds them when the
  // version moved; the others ignore it.
  virtual void sync_weights(const WeightsView& w) {}

  // ---- ops ----
  // y(N,out) = x(N,in) · W(out,in)ᵀ
  virtual void linear_fwd(const float* x, const float* W, float* y, int N, int in, int out) = 0;
  // dx(N,in) (= or +=) dy(N,out) · W(out,in)
  virtual void linear_bwd_x(const float* dy, const float* W, float* dx, int N, int in, int out, bool accumulate) = 0;
  // dW(out,in) += dy(N,out)ᵀ · x(N,in)
  virtual void linear_bwd_w(const float* dy, const float* x, float* dW, int N, int in, int out) = 0;

  // y(N,D) = E[tokens]; dE[tokens] += dy (scatter-add: repeated tokens sum)
  virtual void embedding_fwd(const int32_t* tokens, const float* E, float* y, int N, int D) = 0;
  virtual void embedding_bwd(const int32_t* tokens, const float* dy, float* dE, int N, int D) = 0;

  // y = x · rstd · w with rstd = 1/sqrt(mean(x²)+eps) per row; rstd(N) is saved for backward.
  virtual void rmsnorm_fwd(const float* x, const float* w, float* y, float* rstd, int N, int D, float eps) = 0;
  // dx(N,D) += ∂/∂x, dw(D) += ∂/∂w; dw_acc nullptr: a frozen gain, dx alone
  virtual void rmsnorm_bwd(const float* dy, const float* x, const float* w, const float* rstd, float* dx_acc,
                           float* dw_acc, int N, int D) = 0;

  // In-place rotation of x(B,T,H,hd); row (b,t) is at position pos0+t. rope_bwd applies the
  // inverse rotation (the transpose), which is the gradient of a rotation.
  virtual void rope_fwd(float* x, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) = 0;
  virtual void rope_bwd(float* dx, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) = 0;

  // Causal softmax attention, scale hd^-1/2. q,out (B,T,Hq,hd); k,v (B,T,Hkv,hd); probs (B,Hq,T,T)
  // saved for backward (upper triangle zero). dprobs is scratch of probs' size.
  virtual void attention_fwd(const float* q, const float* k, const float* v, float* out, float* probs,
                             const AttnShape& s) = 0;
  virtual void attention_bwd(const float* dout, const float* q, const float* k, const float* v, const float* probs,
                             float* dq, float* dk, float* dv, float* dprobs, const AttnShape& s) = 0;

  // The flash form of the same attention, without the T×T matrix: fwd saves lse (B,Hq,T), each
  // query row's log-sum-exp of its scaled scores; bwd recomputes the probabilities from q, k and
  // lse, and reads the forward's `out`. A backend that has it says for which shapes it wants it
  // used (attention_flash); the attention stage then takes this form. The defaults fail.
  virtual bool attention_flash(const AttnShape& s) const { return false; }
  virtual void attention_flash_fwd(const float* q, const float* k, const float* v, float* out, float* lse,
                                   const AttnShape& s);
  virtual void attention_flash_bwd(const float* dout, const float* q, const float* k, const float* v,
                                   const float* out, const float* lse, float* dq, float* dk, float* dv,
                                   const AttnShape& s);

  // Inference: Tn new queries at absolute positions pos0…pos0+Tn−1 against a KV cache that
  // already holds positions 0…pos0+Tn−1 (the new ones included). q,out (Tn,Hq,hd);
  // k_cache,v_cache rows of (Hkv,hd); scores is scratch of Hq·Tn·(pos0+Tn) floats.
  virtual void attention_cached_fwd(const float* q, const float* k_cache, const float* v_cache, float* out,
                                    float* scores, int pos0, int Tn, int Hq, int Hkv, int hd) = 0;

  // h = silu(g) ⊙ u, elementwise over n values
  virtual void swiglu_fwd(const float* g, const float* u, float* h, size_t n) = 0;
  virtual void swiglu_bwd(const float* dh, const float* g, const float* u, float* dg, float* du, size_t n) = 0;

  // y = x + α·f ; backward: dx = dy, df = α·dy (residual_bwd writes df)
  virtual void residual_fwd(const float* x, const float* f, float alpha, float* y, size_t n) = 0;
  virtual void residual_bwd(const float* dy, float alpha, float* df, size_t n) = 0;

  // Per-row softmax cross-entropy of logits(N,V) against targets(N) → losses(N).
  virtual void cross_entropy_fwd(const float* logits, const int32_t* targets, float* losses, int N, int V) = 0;
  // dlogits = scale · (softmax(logits) − onehot(target))
  virtual void cross_entropy_bwd(const float* logits, const int32_t* targets, float scale, float* dlogits, int N,
                                 int V) = 0;

  // Inference: y_p(N, W[p].rows) = x(N, cols) · W[p]ᵀ for 1–4 packed matrices that share x (a
  // fused QKV or gate–up product reads x once). The default is the reference, packed_linear_ref.
  virtual void linear_fwd_packed(const float* x, int N, const MatrixRef* W, float* const* y, int parts) {
    packed_linear_ref(x, N, W, y, parts);
  }

  // ---- stages (defaults composed of the ops above, in contract/stages.cpp) ----
  // The classifier and its loss: logits = xf(N,D)·W(V,D)ᵀ, losses(N) = softmax cross-entropy of
  // each row against targets, lse(N) = each row's log-sum-exp (saved for backward). `scratch`
  // holds classifier_scratch_floats(N, V) floats and is the stage's own from fwd to bwd. The
  // default materialises the N×V logits; the cpu backend streams them in vocabulary chunks.
  virtual size_t classifier_scratch_floats(int N, int V) const { return 2 * size_t(N) * size_t(V); }
  virtual void classifier_loss_fwd(const float* xf, const float* W, const int32_t* targets, float* losses,
                                   float* lse, float* scratch, int N, int D, int V);
  // dxf(N,D) = ∂(scale·Σ losses)/∂xf (overwritten); dW(V,D) += ∂(scale·Σ losses)/∂W, unless dW
  // is nullptr (a frozen classifier)
  virtual void classifier_loss_bwd(const float* xf, const float* W, const int32_t* targets, const float* lse,
                                   float scale, float* dxf, float* dW, float* scratch, int N, int D, int V);
  // out = x + α·Wo·attention(rope(qknorm(Wq·n)), rope(qknorm(Wk·n)), Wv·n), n = rmsnorm(x)
  virtual void attention_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                                   AttentionSaved& s);
  // Given dout, writes dx and accumulates this block's parameter gradients into g. A null tensor
  // in g is a frozen weight: its gradient product is skipped, dx and the others are unchanged.
  virtual void attention_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                                   const AttentionSaved& s, const float* dout, float* dx, AttentionScratch& k);
  // out = x + α·Wdown·swiglu(Wgate·n, Wup·n), n = rmsnorm(x)
  virtual void ffn_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out, FfnSaved& s);
  virtual void ffn_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                             const FfnSaved& s, const float* dout, float* dx, FfnScratch& k);
  // Inference form of the attention block for d.T new tokens at positions pos0…: appends their
  // keys/values to the cache and writes out = x + α·Wo·attention(...) for those tokens.
  virtual void attention_block_decode(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                                      KvCacheLayer& cache, int pos0, AttentionSaved& s, float* scores);
  // One decoder layer on packed weights for d.T new tokens at positions pos0…: x (T,D) becomes
  // the layer's output in place (x2 holds the residual between the two blocks); their keys and
  // values are appended to the cache. The default composes the ops (rmsnorm, linear_fwd_packed,
  // rope, attention_cached_fwd, swiglu, residual); the cpu backend fuses a single token's layer
  // into one parallel region. s and f are scratch: their contents afterwards are unspecified.
  virtual void decode_layer_packed(const BlockDims& d, const PackedLayerWeights& w, float* x, float* x2,
                                   KvCacheLayer& cache, int pos0, AttentionSaved& s, FfnSaved& f, float* scores);
};

// QK-norm's backward inside attention_block_bwd: from dq, dk (gradients of the normed q, k) to
// the raw projections' (dq_raw, dk_raw), accumulating g.q_norm and g.k_norm. Returns the pair to
// use for the projections' backward: (dq, dk) themselves without QK-norm.
std::pair<const float*, const float*> qk_norm_bwd(Backend& be, const BlockDims& d, const LayerTensors& w,
                                                 const LayerTensors& g, const AttentionSaved& s, AttentionScratch& k);

// The attention block between its projections, as the default stages compose it: QK-norm (when
// the model has it) on s.q_raw/s.k_raw into s.q/s.k, RoPE, attention into s.attn; and backward
// from k.dattn to the gradients of the projections' outputs (returned as qk_norm_bwd does).
// Shared by backends that fuse the rest of the block differently (cpu-bf16).
void attention_core_fwd(Backend& be, const BlockDims& d, const LayerTensors& w, AttentionSaved& s);
std::pair<const float*, const float*> attention_core_bwd(Backend& be, const BlockDims& d, const LayerTensors& w,
                                                        const LayerTensors& g, const AttentionSaved& s,
                                                        AttentionScratch& k);

}  // namespace anetrain
