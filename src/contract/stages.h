// Buffers a stage keeps from forward to backward, and the scratch its backward needs.
// All are planned once per (config, B, T) by model/workspace.cpp; stages never allocate.
// They belong to the stage between its forward and its backward, and only the members named as
// outputs of the contract (out, dx, the cache) mean anything to callers: a backend may keep
// other contents there. cpu-bf16 does — xn and h (and the dres, dg, du scratch) hold bf16 values
// in their first halves (backends/cpu/ffn_block.cpp) — so nothing but the same backend's
// backward may read them as floats.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

#include "contract/packed.h"
#include "contract/tensors.h"

namespace anetrain {

class Backend;

struct AttentionSaved {
  float* xn;      // (N,D) rmsnorm(x)·w
  float* rstd;    // (N)
  float* q_raw;   // (N,Hq*hd) projection before QK-norm (qk_norm only)
  float* k_raw;   // (N,Hkv*hd)
  float* q_rstd;  // (N*Hq) (qk_norm only)
  float* k_rstd;  // (N*Hkv)
  float* q;       // (N,Hq*hd) after QK-norm and RoPE
  float* k;       // (N,Hkv*hd)
  float* v;       // (N,Hkv*hd)
  float* probs;   // (B,Hq,T,T)
  float* attn;    // (N,Hq*hd) attention output before Wo
  float* o;       // (N,D) Wo·attn (before the residual)
  float* lse;     // (B,Hq,T) row log-sum-exp of the flash form (nullptr: the stage keeps probs)
  // With adapters (d.lora_rank = r > 0): scale·x·Aᵀ of q, k, v, o, each (N,r), for the backward
  float* lora_t;  // (4,N,r) or nullptr
};

struct AttentionScratch {
  float* dattn;   // (N,Hq*hd)
  float* dq;      // (N,Hq*hd)
  float* dk;      // (N,Hkv*hd)
  float* dv;      // (N,Hkv*hd)
  float* dq_raw;  // (N,Hq*hd)
  float* dk_raw;  // (N,Hkv*hd)
  float* dprobs;  // (B,Hq,T,T) (not with the flash form)
  float* dxn;     // (N,D)
  float* dres;    // (N,D) α·dout
  float* lora_u;  // (N,r) an adapter's scale·dy·B (with adapters only)
};

// One layer's KV cache: keys/values of every position so far, rows of (Hkv·hd).
struct KvCacheLayer {
  float* k;  // (max_ctx, Hkv*hd), keys after QK-norm and RoPE
  float* v;  // (max_ctx, Hkv*hd)
  int max_ctx;
};

struct FfnSaved {
  float* xn;    // (N,D)
  float* rstd;  // (N)
  float* g;     // (N,F) gate projection
  float* u;     // (N,F) up projection
  float* h;     // (N,F) silu(g)·u
  float* f;     // (N,D) Wdown·h
  float* lora_t;  // (3,N,r) scale·x·Aᵀ of gate, up, down (with adapters only)
};

// Buffers of one block for N rows, carved by `take` (an arena's allocator). Decoding keeps keys
// and values in its KV cache and needs no probabilities, so `training` false skips k, v, probs.
// flash: the backend runs attention in its flash form (Backend::attention_flash), which saves lse
// instead of the (B,Hq,T,T) probabilities.
using TakeFloats = std::function<float*(size_t)>;
AttentionSaved plan_attention_saved(const TakeFloats& take, const BlockDims& d, bool training, bool flash = false);
FfnSaved plan_ffn_saved(const TakeFloats& take, const BlockDims& d);

// One layer's weights for decoding in the format they are stored in (a PackedModel's rows):
// gains in fp32, products grouped as they are fused (Q, K, V in one; gate and up in one).
struct PackedLayerWeights {
  const float *attn_norm, *q_norm, *k_norm, *ffn_norm;  // q_norm/k_norm: nullptr without QK-norm
  MatrixRef qkv[3], wo, gate_up[2], down;
};
// Throws Error unless the matrices have the shapes `d` implies (a decode stage writes rows by
// them into buffers planned from d) and d is one sequence.
void check_decode_layer(const BlockDims& d, const PackedLayerWeights& w);

// The low-rank adapter of one projection, y(N,out) = x(N,in)·Wᵀ: forward adds scale·t·Bᵀ to y
// and keeps t = scale·x·Aᵀ (N,r); backward accumulates dA and dBt into g (skipped when g's are
// null) and adds the adapter's share of dx into dx_acc (which then already holds dy·W).
// Nothing happens for a projection without an adapter (a.a null). Composed of linear ops only,
// so every backend's products serve them.
void adapter_fwd(Backend& be, const LayerAdapters& L, const Adapter& a, const float* x, float* y, float* t, int N,
                 int in, int out);
// The first part of adapter_fwd: t = scale·x·Aᵀ (N, r), which the backward reads. For a backend
// whose forward already passed through W + scale·B·A (the ane backend's merged weights).
void adapter_project(Backend& be, const LayerAdapters& L, const Adapter& a, const float* x, float* t, int N, int in);
void adapter_bwd(Backend& be, const LayerAdapters& L, const Adapter& a, const Adapter& g, const float* x,
                 const float* t, const float* dy, float* dx_acc, float* u, int N, int in, int out);
// The first part of adapter_bwd: dBt += tᵀ·dy and dA += uᵀ·x (each skipped when g's is null),
// leaving u = scale·dy·B (N, r). For a backend whose dx already passed through W + scale·B·A (the
// ane backend's merged weights), this is all the adapter's backward that is left.
void adapter_grads(Backend& be, const LayerAdapters& L, const Adapter& a, const Adapter& g, const float* x,
                   const float* t, const float* dy, float* u, int N, int in, int out);
// Adapter dropout (tensors.h AdapterDropout; adapter_dropout.cpp). While L.dropout is active
// the functions above mask the adapter's input (and its share of dx) and use adapter_scale(L),
// which folds drop's 1/(1 − p) into the scale, so that the mask alone touches x: masking commutes
// with rounding to bf16, and cpu-bf16's fused stages mask their bf16 copy of x to the same bits.
// The masked input lives in L.dropout.scratch and is regenerated by the backward, never kept.
int adapter_projection(const LayerAdapters& L, const Adapter& a);  // 0..6: q, k, v, o, gate, up, down
float adapter_scale(const LayerAdapters& L);                       // scale, or scale / (1 − p)
void require_dropout_scratch(const LayerAdapters& L);              // throws when active without scratch
// dst = src ⊙ m (dropped elements exactly 0), or dst += src ⊙ m with accumulate; (N, in).
void apply_adapter_dropout(const LayerAdapters& L, const Adapter& a, const float* src, float* dst, int N, int in,
                           bool accumulate);
void apply_adapter_dropout_bf16(const LayerAdapters& L, const Adapter& a, const uint16_t* src, uint16_t* dst, int N,
                                int in);
// The buffers of one block's adapters, each (N, r): t's are saved (AttentionSaved/FfnSaved), u is scratch.
inline float* lora_slot(float* base, int slot, const BlockDims& d) {
  return base ? base + size_t(slot) * size_t(d.N()) * size_t(d.lora_rank) : nullptr;
}

struct FfnScratch {
  float* dh;    // (N,F)
  float* dg;    // (N,F)
  float* du;    // (N,F)
  float* dxn;   // (N,D)
  float* dres;  // (N,D)
  float* lora_u;  // (N,r) (with adapters only)
};

// The backward scratch of one block (shared by every layer: its contents do not outlive a stage).
AttentionScratch plan_attention_scratch(const TakeFloats& take, const BlockDims& d, bool flash = false);
FfnScratch plan_ffn_scratch(const TakeFloats& take, const BlockDims& d);

}  // namespace anetrain
