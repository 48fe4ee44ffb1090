// Default stages: each block written as a sequence of contract ops. A backend that fuses a
// block overrides the virtual and is tested against this composition.
#include <cstring>
#include <string>

#include "core/error.h"
#include "contract/backend.h"

namespace anetrain {

namespace {
// dW += dyᵀ·x for a trainable weight; a frozen one (null gradient) costs nothing.
void weight_grad(Backend& be, const float* dy, const float* x, float* dW, int N, int in, int out) {
  if (dW) be.linear_bwd_w(dy, x, dW, N, in, out);
}
}  // namespace

AttentionSaved plan_attention_saved(const TakeFloats& take, const BlockDims& d, bool training, bool flash) {
  const size_t N = size_t(d.N()), D = d.D, qd = size_t(d.Hq) * d.hd, kvd = size_t(d.Hkv) * d.hd;
  AttentionSaved a{};
  a.xn = take(N * D);
  a.rstd = take(N);
  a.q_raw = d.qk_norm ? take(N * qd) : nullptr;
  a.k_raw = d.qk_norm ? take(N * kvd) : nullptr;
  a.q_rstd = d.qk_norm ? take(N * d.Hq) : nullptr;
  a.k_rstd = d.qk_norm ? take(N * d.Hkv) : nullptr;
  a.q = take(N * qd);
  a.k = training ? take(N * kvd) : nullptr;
  a.v = training ? take(N * kvd) : nullptr;
  a.probs = training && !flash ? take(size_t(d.B) * d.Hq * d.T * d.T) : nullptr;
  a.attn = take(N * qd);
  a.o = take(N * D);
  a.lse = training && flash ? take(size_t(d.B) * d.Hq * d.T) : nullptr;
  a.lora_t = d.lora_rank > 0 ? take(4 * N * size_t(d.lora_rank)) : nullptr;
  return a;
}

FfnSaved plan_ffn_saved(const TakeFloats& take, const BlockDims& d) {
  const size_t N = size_t(d.N()), D = d.D, F = d.F;
  FfnSaved f{};
  f.xn = take(N * D);
  f.rstd = take(N);
  f.g = take(N * F);
  f.u = take(N * F);
  f.h = take(N * F);
  f.f = take(N * D);
  f.lora_t = d.lora_rank > 0 ? take(3 * N * size_t(d.lora_rank)) : nullptr;
  return f;
}

AttentionScratch plan_attention_scratch(const TakeFloats& take, const BlockDims& d, bool flash) {
  const size_t N = size_t(d.N()), D = d.D, qd = size_t(d.Hq) * d.hd, kvd = size_t(d.Hkv) * d.hd;
  AttentionScratch k{};
  k.dattn = take(N * qd);
  k.dq = take(N * qd);
  k.dk = take(N * kvd);
  k.dv = take(N * kvd);
  k.dq_raw = take(N * qd);
  k.dk_raw = take(N * kvd);
  k.dprobs = flash ? nullptr : take(size_t(d.B) * d.Hq * d.T * d.T);
  k.dxn = take(N * D);
  k.dres = take(N * D);
  k.lora_u = d.lora_rank > 0 ? take(N * size_t(d.lora_rank)) : nullptr;
  return k;
}

FfnScratch plan_ffn_scratch(const TakeFloats& take, const BlockDims& d) {
  const size_t N = size_t(d.N()), D = d.D, F = d.F;
  FfnScratch k{};
  k.dh = take(N * F);
  k.dg = take(N * F);
  k.du = take(N * F);
  k.dxn = take(N * D);
  k.dres = take(N * D);
  k.lora_u = d.lora_rank > 0 ? take(N * size_t(d.lora_rank)) : nullptr;
  return k;
}

void adapter_project(Backend& be, const LayerAdapters& L, const Adapter& a, const float* x, float* t, int N, int in) {
  if (!a.a) return;
  if (L.dropout.active()) {  // t = x ⊙ m · Aᵀ, the mask's 1/(1 − p) in the scale
    require_dropout_scratch(L);
    apply_adapter_dropout(L, a, x, L.dropout.scratch, N, in, false);
    x = L.dropout.scratch;
  }
  be.linear_fwd(x, a.a, t, N, in, L.rank);  // t = x·Aᵀ
  const size_t n = size_t(N) * size_t(L.rank);
  const float scale = adapter_scale(L);
  for (size_t i = 0; i < n; ++i) t[i] *= scale;
}

void adapter_fwd(Backend& be, const LayerAdapters& L, const Adapter& a, const float* x, float* y, float* t, int N,
                 int in, int out) {
  if (!a.a) return;
  adapter_project(be, L, a, x, t, N, in);
  be.linear_bwd_x(t, a.bt, y, N, out, L.rank, true);  // y += t·Bᵀ (Bt is (r, out))
}

void adapter_grads(Backend& be, const LayerAdapters& L, const Adapter& a, const Adapter& g, const float* x,
                   const float* t, const float* dy, float* u, int N, int in, int out) {
  if (!a.a) return;
  const int r = L.rank;
  if (g.bt) be.linear_bwd_w(t, dy, g.bt, N, out, r);  // dBt += tᵀ·dy
  be.linear_fwd(dy, a.bt, u, N, out, r);              // u = dy·B
  const size_t n = size_t(N) * r;
  const float scale = adapter_scale(L);
  for (size_t i = 0; i < n; ++i) u[i] *= scale;
  if (!g.a) return;
  if (L.dropout.active()) {  // the forward's masked input, drawn again
    require_dropout_scratch(L);
    apply_adapter_dropout(L, a, x, L.dropout.scratch, N, in, false);
    x = L.dropout.scratch;
  }
  be.linear_bwd_w(u, x, g.a, N, in, r);  // dA += uᵀ·x
}

void adapter_bwd(Backend& be, const LayerAdapters& L, const Adapter& a, const Adapter& g, const float* x,
                 const float* t, const float* dy, float* dx_acc, float* u, int N, int in, int out) {
  if (!a.a) return;
  adapter_grads(be, L, a, g, x, t, dy, u, N, in, out);
  if (!L.dropout.active()) {
    be.linear_bwd_x(u, a.a, dx_acc, N, in, L.rank, true);  // dx += u·A
    return;
  }
  be.linear_bwd_x(u, a.a, L.dropout.scratch, N, in, L.rank, false);  // dx += (u·A) ⊙ m
  apply_adapter_dropout(L, a, L.dropout.scratch, dx_acc, N, in, true);
}

void Backend::attention_flash_fwd(const float*, const float*, const float*, float*, float*, const AttnShape&) {
  fail("backend '" + name() + "' has no flash form of attention (plan the workspace with probabilities)");
}

void Backend::attention_flash_bwd(const float*, const float*, const float*, const float*, const float*, const float*,
                                  float*, float*, float*, const AttnShape&) {
  fail("backend '" + name() + "' has no flash form of attention (plan the workspace with probabilities)");
}

void Backend::classifier_loss_fwd(const float* xf, const float* W, const int32_t* targets, float* losses, float* lse,
                                  float* scratch, int N, int D, int V) {
  float* logits = scratch;  // kept for backward
  linear_fwd(xf, W, logits, N, D, V);
  cross_entropy_fwd(logits, targets, losses, N, V);
  for (int n = 0; n < N; ++n) lse[n] = losses[n] + logits[size_t(n) * V + targets[n]];
}

void Backend::classifier_loss_bwd(const float* xf, const float* W, const int32_t* targets, const float* lse,
                                  float scale, float* dxf, float* dW, float* scratch, int N, int D, int V) {
  const float* logits = scratch;
  float* dlogits = scratch + size_t(N) * V;
  cross_entropy_bwd(logits, targets, scale, dlogits, N, V);
  weight_grad(*this, dlogits, xf, dW, N, D, V);
  linear_bwd_x(dlogits, W, dxf, N, D, V, false);
}

std::pair<const float*, const float*> qk_norm_bwd(Backend& be, const BlockDims& d, const LayerTensors& w,
                                                 const LayerTensors& g, const AttentionSaved& s, AttentionScratch& k) {
  if (!d.qk_norm) return {k.dq, k.dk};
  const size_t N = size_t(d.N()), qd = size_t(d.Hq) * d.hd, kvd = size_t(d.Hkv) * d.hd;
  std::memset(k.dq_raw, 0, sizeof(float) * N * qd);
  std::memset(k.dk_raw, 0, sizeof(float) * N * kvd);
  be.rmsnorm_bwd(k.dq, s.q_raw, w.q_norm, s.q_rstd, k.dq_raw, g.q_norm, d.N() * d.Hq, d.hd);
  be.rmsnorm_bwd(k.dk, s.k_raw, w.k_norm, s.k_rstd, k.dk_raw, g.k_norm, d.N() * d.Hkv, d.hd);
  return {k.dq_raw, k.dk_raw};
}

void attention_core_fwd(Backend& be, const BlockDims& d, const LayerTensors& w, AttentionSaved& s) {
  const int N = d.N();
  if (d.qk_norm) {  // RMSNorm over each head's hd values: rows = N·heads
    be.rmsnorm_fwd(s.q_raw, w.q_norm, s.q, s.q_rstd, N * d.Hq, d.hd, d.eps);
    be.rmsnorm_fwd(s.k_raw, w.k_norm, s.k, s.k_rstd, N * d.Hkv, d.hd, d.eps);
  }
  be.rope_fwd(s.q, d.B, d.T, d.Hq, d.hd, 0, d.rope, d.theta);
  be.rope_fwd(s.k, d.B, d.T, d.Hkv, d.hd, 0, d.rope, d.theta);
  const AttnShape shape{d.B, d.T, d.Hq, d.Hkv, d.hd};
  if (s.lse)
    be.attention_flash_fwd(s.q, s.k, s.v, s.attn, s.lse, shape);
  else
    be.attention_fwd(s.q, s.k, s.v, s.attn, s.probs, shape);
}

std::pair<const float*, const float*> attention_core_bwd(Backend& be, const BlockDims& d, const LayerTensors& w,
                                                        const LayerTensors& g, const AttentionSaved& s,
                                                        AttentionScratch& k) {
  const AttnShape shape{d.B, d.T, d.Hq, d.Hkv, d.hd};
  if (s.lse)
    be.attention_flash_bwd(k.dattn, s.q, s.k, s.v, s.attn, s.lse, k.dq, k.dk, k.dv, shape);
  else
    be.attention_bwd(k.dattn, s.q, s.k, s.v, s.probs, k.dq, k.dk, k.dv, k.dprobs, shape);
  be.rope_bwd(k.dq, d.B, d.T, d.Hq, d.hd, 0, d.rope, d.theta);
  be.rope_bwd(k.dk, d.B, d.T, d.Hkv, d.hd, 0, d.rope, d.theta);
  return qk_norm_bwd(be, d, w, g, s, k);
}

void Backend::attention_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                                  AttentionSaved& s) {
  const int N = d.N(), qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;
  const LayerAdapters& A = w.lora;
  rmsnorm_fwd(x, w.attn_norm, s.xn, s.rstd, N, d.D, d.eps);
  float* q_out = d.qk_norm ? s.q_raw : s.q;
  float* k_out = d.qk_norm ? s.k_raw : s.k;
  linear_fwd(s.xn, w.wq, q_out, N, d.D, qd);
  adapter_fwd(*this, A, A.wq, s.xn, q_out, lora_slot(s.lora_t, 0, d), N, d.D, qd);
  linear_fwd(s.xn, w.wk, k_out, N, d.D, kvd);
  adapter_fwd(*this, A, A.wk, s.xn, k_out, lora_slot(s.lora_t, 1, d), N, d.D, kvd);
  linear_fwd(s.xn, w.wv, s.v, N, d.D, kvd);
  adapter_fwd(*this, A, A.wv, s.xn, s.v, lora_slot(s.lora_t, 2, d), N, d.D, kvd);
  attention_core_fwd(*this, d, w, s);
  linear_fwd(s.attn, w.wo, s.o, N, qd, d.D);
  adapter_fwd(*this, A, A.wo, s.attn, s.o, lora_slot(s.lora_t, 3, d), N, qd, d.D);
  residual_fwd(x, s.o, d.alpha, out, size_t(N) * d.D);
}

void Backend::attention_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                                  const AttentionSaved& s, const float* dout, float* dx, AttentionScratch& k) {
  const int N = d.N(), qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;
  const LayerAdapters& A = w.lora;
  residual_bwd(dout, d.alpha, k.dres, size_t(N) * d.D);
  weight_grad(*this, k.dres, s.attn, g.wo, N, qd, d.D);
  linear_bwd_x(k.dres, w.wo, k.dattn, N, qd, d.D, false);
  adapter_bwd(*this, A, A.wo, g.lora.wo, s.attn, lora_slot(s.lora_t, 3, d), k.dres, k.dattn, k.lora_u, N, qd, d.D);
  const auto [dq, dk] = attention_core_bwd(*this, d, w, g, s, k);
  weight_grad(*this, dq, s.xn, g.wq, N, d.D, qd);
  weight_grad(*this, dk, s.xn, g.wk, N, d.D, kvd);
  weight_grad(*this, k.dv, s.xn, g.wv, N, d.D, kvd);
  linear_bwd_x(dq, w.wq, k.dxn, N, d.D, qd, false);
  adapter_bwd(*this, A, A.wq, g.lora.wq, s.xn, lora_slot(s.lora_t, 0, d), dq, k.dxn, k.lora_u, N, d.D, qd);
  linear_bwd_x(dk, w.wk, k.dxn, N, d.D, kvd, true);
  adapter_bwd(*this, A, A.wk, g.lora.wk, s.xn, lora_slot(s.lora_t, 1, d), dk, k.dxn, k.lora_u, N, d.D, kvd);
  linear_bwd_x(k.dv, w.wv, k.dxn, N, d.D, kvd, true);
  adapter_bwd(*this, A, A.wv, g.lora.wv, s.xn, lora_slot(s.lora_t, 2, d), k.dv, k.dxn, k.lora_u, N, d.D, kvd);
  std::memcpy(dx, dout, sizeof(float) * size_t(N) * d.D);  // the skip path
  rmsnorm_bwd(k.dxn, x, w.attn_norm, s.rstd, dx, g.attn_norm, N, d.D);
}

void Backend::attention_block_decode(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                                     KvCacheLayer& cache, int pos0, AttentionSaved& s, float* scores) {
  const int N = d.T, qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;  // one sequence: N = T new tokens
  rmsnorm_fwd(x, w.attn_norm, s.xn, s.rstd, N, d.D, d.eps);
  float* k_new = cache.k + size_t(pos0) * kvd;  // new keys/values go straight into the cache
  float* v_new = cache.v + size_t(pos0) * kvd;
  const LayerAdapters& A = w.lora;
  float* q_out = d.qk_norm ? s.q_raw : s.q;
  float* k_out = d.qk_norm ? s.k_raw : k_new;
  linear_fwd(s.xn, w.wq, q_out, N, d.D, qd);
  adapter_fwd(*this, A, A.wq, s.xn, q_out, lora_slot(s.lora_t, 0, d), N, d.D, qd);
  linear_fwd(s.xn, w.wk, k_out, N, d.D, kvd);
  adapter_fwd(*this, A, A.wk, s.xn, k_out, lora_slot(s.lora_t, 1, d), N, d.D, kvd);
  if (d.qk_norm) {
    rmsnorm_fwd(s.q_raw, w.q_norm, s.q, s.q_rstd, N * d.Hq, d.hd, d.eps);
    rmsnorm_fwd(s.k_raw, w.k_norm, k_new, s.k_rstd, N * d.Hkv, d.hd, d.eps);
  }
  linear_fwd(s.xn, w.wv, v_new, N, d.D, kvd);
  adapter_fwd(*this, A, A.wv, s.xn, v_new, lora_slot(s.lora_t, 2, d), N, d.D, kvd);
  rope_fwd(s.q, 1, N, d.Hq, d.hd, pos0, d.rope, d.theta);
  rope_fwd(k_new, 1, N, d.Hkv, d.hd, pos0, d.rope, d.theta);
  attention_cached_fwd(s.q, cache.k, cache.v, s.attn, scores, pos0, N, d.Hq, d.Hkv, d.hd);
  linear_fwd(s.attn, w.wo, s.o, N, qd, d.D);
  adapter_fwd(*this, A, A.wo, s.attn, s.o, lora_slot(s.lora_t, 3, d), N, qd, d.D);
  residual_fwd(x, s.o, d.alpha, out, size_t(N) * d.D);
}

void check_decode_layer(const BlockDims& d, const PackedLayerWeights& w) {
  const int qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;
  const struct {
    const MatrixRef& m;
    int rows, cols;
    const char* name;
  } expect[] = {{w.qkv[0], qd, d.D, "Wq"},        {w.qkv[1], kvd, d.D, "Wk"},     {w.qkv[2], kvd, d.D, "Wv"},
                {w.wo, d.D, qd, "Wo"},             {w.gate_up[0], d.F, d.D, "Wgate"}, {w.gate_up[1], d.F, d.D, "Wup"},
                {w.down, d.D, d.F, "Wdown"}};
  if (d.B != 1) fail("decode_layer_packed: one sequence at a time (B = " + std::to_string(d.B) + ")");
  for (const auto& e : expect)
    if (e.m.rows != e.rows || e.m.cols != e.cols)
      fail(std::string("decode_layer_packed: ") + e.name + " is " + std::to_string(e.m.rows) + "×" +
           std::to_string(e.m.cols) + ", the layer's dimensions need " + std::to_string(e.rows) + "×" +
           std::to_string(e.cols));
}

void Backend::decode_layer_packed(const BlockDims& d, const PackedLayerWeights& w, float* x, float* x2,
                                  KvCacheLayer& cache, int pos0, AttentionSaved& s, FfnSaved& f, float* scores) {
  check_decode_layer(d, w);
  const int T = d.T, kvd = d.Hkv * d.hd;
  rmsnorm_fwd(x, w.attn_norm, s.xn, s.rstd, T, d.D, d.eps);
  float* k_new = cache.k + size_t(pos0) * kvd;  // new keys/values go straight into the cache
  float* v_new = cache.v + size_t(pos0) * kvd;
  float* qkv_out[3] = {d.qk_norm ? s.q_raw : s.q, d.qk_norm ? s.k_raw : k_new, v_new};
  linear_fwd_packed(s.xn, T, w.qkv, qkv_out, 3);
  if (d.qk_norm) {
    rmsnorm_fwd(s.q_raw, w.q_norm, s.q, s.q_rstd, T * d.Hq, d.hd, d.eps);
    rmsnorm_fwd(s.k_raw, w.k_norm, k_new, s.k_rstd, T * d.Hkv, d.hd, d.eps);
  }
  rope_fwd(s.q, 1, T, d.Hq, d.hd, pos0, d.rope, d.theta);
  rope_fwd(k_new, 1, T, d.Hkv, d.hd, pos0, d.rope, d.theta);
  attention_cached_fwd(s.q, cache.k, cache.v, s.attn, scores, pos0, T, d.Hq, d.Hkv, d.hd);
  float* o_out[1] = {s.o};
  linear_fwd_packed(s.attn, T, &w.wo, o_out, 1);
  residual_fwd(x, s.o, d.alpha, x2, size_t(T) * d.D);

  rmsnorm_fwd(x2, w.ffn_norm, f.xn, f.rstd, T, d.D, d.eps);
  float* gu_out[2] = {f.g, f.u};
  linear_fwd_packed(f.xn, T, w.gate_up, gu_out, 2);
  swiglu_fwd(f.g, f.u, f.h, size_t(T) * d.F);
  float* f_out[1] = {f.f};
  linear_fwd_packed(f.h, T, &w.down, f_out, 1);
  residual_fwd(x2, f.f, d.alpha, x, size_t(T) * d.D);
}

void Backend::ffn_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out, FfnSaved& s) {
  const int N = d.N();
  const LayerAdapters& A = w.lora;
  rmsnorm_fwd(x, w.ffn_norm, s.xn, s.rstd, N, d.D, d.eps);
  linear_fwd(s.xn, w.w_gate, s.g, N, d.D, d.F);
  adapter_fwd(*this, A, A.w_gate, s.xn, s.g, lora_slot(s.lora_t, 0, d), N, d.D, d.F);
  linear_fwd(s.xn, w.w_up, s.u, N, d.D, d.F);
  adapter_fwd(*this, A, A.w_up, s.xn, s.u, lora_slot(s.lora_t, 1, d), N, d.D, d.F);
  swiglu_fwd(s.g, s.u, s.h, size_t(N) * d.F);
  linear_fwd(s.h, w.w_down, s.f, N, d.F, d.D);
  adapter_fwd(*this, A, A.w_down, s.h, s.f, lora_slot(s.lora_t, 2, d), N, d.F, d.D);
  residual_fwd(x, s.f, d.alpha, out, size_t(N) * d.D);
}

void Backend::ffn_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                            const FfnSaved& s, const float* dout, float* dx, FfnScratch& k) {
  const int N = d.N();
  const LayerAdapters& A = w.lora;
  residual_bwd(dout, d.alpha, k.dres, size_t(N) * d.D);
  weight_grad(*this, k.dres, s.h, g.w_down, N, d.F, d.D);
  linear_bwd_x(k.dres, w.w_down, k.dh, N, d.F, d.D, false);
  adapter_bwd(*this, A, A.w_down, g.lora.w_down, s.h, lora_slot(s.lora_t, 2, d), k.dres, k.dh, k.lora_u, N, d.F, d.D);
  swiglu_bwd(k.dh, s.g, s.u, k.dg, k.du, size_t(N) * d.F);
  weight_grad(*this, k.dg, s.xn, g.w_gate, N, d.D, d.F);
  weight_grad(*this, k.du, s.xn, g.w_up, N, d.D, d.F);
  linear_bwd_x(k.dg, w.w_gate, k.dxn, N, d.D, d.F, false);
  adapter_bwd(*this, A, A.w_gate, g.lora.w_gate, s.xn, lora_slot(s.lora_t, 0, d), k.dg, k.dxn, k.lora_u, N, d.D, d.F);
  linear_bwd_x(k.du, w.w_up, k.dxn, N, d.D, d.F, true);
  adapter_bwd(*this, A, A.w_up, g.lora.w_up, s.xn, lora_slot(s.lora_t, 1, d), k.du, k.dxn, k.lora_u, N, d.D, d.F);
  std::memcpy(dx, dout, sizeof(float) * size_t(N) * d.D);
  rmsnorm_bwd(k.dxn, x, w.ffn_norm, s.rstd, dx, g.ffn_norm, N, d.D);
}

}  // namespace anetrain
