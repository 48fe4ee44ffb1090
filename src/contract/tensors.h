// The shapes and tensor bundles the kernel contract speaks in. They describe a block, not a
// model: model/ turns a ModelConfig into them (block_dims) and binds its parameter table to
// LayerTensors, so the contract and every backend depend on core/ alone.
#pragma once
#include <cstdint>

namespace anetrain {

// Which element pairs RoPE rotates inside a head of size hd.
//   interleaved: (2i, 2i+1) — Meta / llama2.c weights.
//   half:        (i, i+hd/2) — Hugging Face Llama / Qwen3 weights ("rotate_half").
//   none:        no rotation at all — position comes only from the causal mask (the seed system's
//                static pipeline and its first dynamic one trained so; docs/seed-runs.md).
enum class RopeStyle { interleaved, half, none };

// One transformer block's dimensions at a batch shape.
struct BlockDims {
  int B, T;  // N = B*T rows
  int D, Hq, Hkv, hd, F;
  float eps, alpha, theta;
  RopeStyle rope;
  bool qk_norm;
  int layer = -1;  // which layer (set by the model's passes); -1 when the caller does not say
  int lora_rank = 0;  // r of the layer's low-rank adapters (0: none); sizes their saved buffers
  int N() const { return B * T; }
};

struct AttnShape {
  int B, T, Hq, Hkv, hd;  // query head h reads kv head h / (Hq/Hkv)
};

// A low-rank adapter (LoRA) on one projection W (out, in): the projection computes
// x·Wᵀ + scale·(x·Aᵀ)·Bᵀ with A (r, in) and B (out, r). B is held transposed, as Bt (r, out), so
// that each of the adapter's products is one of the contract's three linear ops (stages.cpp,
// adapter_fwd/adapter_bwd). In a gradient bundle the same members point at dA and dBt.
struct Adapter {
  float* a = nullptr;   // (r, in); nullptr: this projection has no adapter
  float* bt = nullptr;  // (r, out)
};

// Dropout on the adapters' inputs (PEFT's lora_dropout) for one micro-batch of a training step:
// each adapted projection computes x·Wᵀ + scale·(drop(x)·Aᵀ)·Bᵀ, drop(x) = x ⊙ m / (1 − p), with
// m drawn per element and per projection by core/dropout_mask.h from (key, layer, projection).
// The trainer sets it on every layer before a micro-batch's forward and clears it after its
// backward; with p = 0 (the default: validation, eval, grad, generation) nothing is dropped.
// stages.cpp (adapter_fwd, adapter_grads, adapter_bwd) applies it.
struct AdapterDropout {
  double p = 0;
  uint64_t key = 0;          // the micro-batch's key (dropout_micro_batch_key)
  int layer = 0;             // this layer's index in the mask's stream
  float* scratch = nullptr;  // N × (the widest adapted input) floats, shared by every layer
  bool active() const { return p > 0; }
};

// A layer's adapters. rank 0: none (full training or inference of a plain model).
struct LayerAdapters {
  int rank = 0;
  float scale = 0;  // α / r
  Adapter wq, wk, wv, wo, w_gate, w_up, w_down;
  AdapterDropout dropout;  // off unless a training step set it
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
  LayerAdapters lora;  // adapters over the projections above (their gradients in a gradient bundle)
};

}  // namespace anetrain
