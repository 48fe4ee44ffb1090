// `ref`: the oracle backend. Plain loops that read like the math, double accumulators,
// single-threaded, never optimised. Every other backend is tested against it.
#pragma once
#include "contract/backend.h"

namespace anetrain {

class RefBackend final : public Backend {
 public:
  std::string name() const override { return "ref"; }
  Capabilities caps() override { return {}; }  // fp32, the tolerances others are held to; nothing optional
  void linear_fwd(const float* x, const float* W, float* y, int N, int in, int out) override;
  void linear_bwd_x(const float* dy, const float* W, float* dx, int N, int in, int out, bool accumulate) override;
  void linear_bwd_w(const float* dy, const float* x, float* dW, int N, int in, int out) override;
  void embedding_fwd(const int32_t* tokens, const float* E, float* y, int N, int D) override;
  void embedding_bwd(const int32_t* tokens, const float* dy, float* dE, int N, int D) override;
  void rmsnorm_fwd(const float* x, const float* w, float* y, float* rstd, int N, int D, float eps) override;
  void rmsnorm_bwd(const float* dy, const float* x, const float* w, const float* rstd, float* dx_acc, float* dw_acc,
                   int N, int D) override;
  void rope_fwd(float* x, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) override;
  void rope_bwd(float* dx, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) override;
  void attention_fwd(const float* q, const float* k, const float* v, float* out, float* probs,
                     const AttnShape& s) override;
  void attention_bwd(const float* dout, const float* q, const float* k, const float* v, const float* probs, float* dq,
                     float* dk, float* dv, float* dprobs, const AttnShape& s) override;
  void attention_cached_fwd(const float* q, const float* k_cache, const float* v_cache, float* out, float* scores,
                            int pos0, int Tn, int Hq, int Hkv, int hd) override;
  void swiglu_fwd(const float* g, const float* u, float* h, size_t n) override;
  void swiglu_bwd(const float* dh, const float* g, const float* u, float* dg, float* du, size_t n) override;
  void residual_fwd(const float* x, const float* f, float alpha, float* y, size_t n) override;
  void residual_bwd(const float* dy, float alpha, float* df, size_t n) override;
  void cross_entropy_fwd(const float* logits, const int32_t* targets, float* losses, int N, int V) override;
  void cross_entropy_bwd(const float* logits, const int32_t* targets, float scale, float* dlogits, int N,
                         int V) override;
};

}  // namespace anetrain
