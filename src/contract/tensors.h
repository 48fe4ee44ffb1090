// The shapes and tensor bundles the kernel contract speaks in. They describe a block, not a
// model: model/ turns a ModelConfig into them (block_dims) and binds its parameter table to
// LayerTensors, so the contract and every backend depend on core/ alone.
#pragma once

namespace anetrain {

// Which element pairs RoPE rotates inside a head of size hd.
//   interleaved: (2i, 2i+1) — Meta / llama2.c weights.
//   half:        (i, i+hd/2) — Hugging Face Llama / Qwen3 weights ("rotate_half").
enum class RopeStyle { interleaved, half };

// One transformer block's dimensions at a batch shape.
struct BlockDims {
  int B, T;  // N = B*T rows
  int D, Hq, Hkv, hd, F;
  float eps, alpha, theta;
  RopeStyle rope;
  bool qk_norm;
  int layer = -1;  // which layer (set by the model's passes); -1 when the caller does not say
  int N() const { return B * T; }
};

struct AttnShape {
  int B, T, Hq, Hkv, hd;  // query head h reads kv head h / (Hq/Hkv)
};

// One layer's tensors in a flat buffer: its weights, or (the same layout) its gradients.
struct LayerTensors {
  float* attn_norm;  // (D)
  float* wq;         // (Hq*hd, D)
  float* wk;         // (Hkv*hd, D)
  float* wv;         // (Hkv*hd, D)
  float* wo;         // (D, Hq*hd)
  float* q_norm;     // (hd) or nullptr without qk_norm
  float* k_norm;     // (hd) or nullptr
  float* ffn_norm;   // (D)
  float* w_gate;     // (F, D)
  float* w_up;       // (F, D)
  float* w_down;     // (D, F)
};

}  // namespace anetrain
