// The parameter table: one row (HF name, shape, offset, trainable) per tensor. It alone drives
// allocation, checkpoint I/O, optimizer state, gradient norms and telemetry; nothing else lists
// parameters.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "contract/packed.h"
#include "contract/tensors.h"
#include "model/config.h"

namespace anetrain {

// What a tensor is, independent of its layer index; lets code find "layer 3's q_proj"
// without string matching and tells the optimizer which tensors get weight decay.
enum class ParamRole {
  embedding, attn_norm, wq, wk, wv, wo, q_norm, k_norm, ffn_norm, w_gate, w_up, w_down, final_norm, lm_head,
  // A projection's low-rank adapter (ParamSpec::adapts names the projection): A (r, in), and B
  // held transposed as (r, out) — the Hugging Face PEFT file's lora_B.weight is its transpose.
  lora_a, lora_b
};

struct ParamSpec {
  std::string name;            // Hugging Face tensor name
  std::vector<int64_t> shape;  // row-major, [out, in] for matrices
  ParamRole role;
  int layer;      // -1 for non-layer tensors
  size_t offset;  // in floats, into the flat parameter buffer
  // A frozen tensor (false) has no gradient and no optimizer state, and training never changes
  // it; the gradient arena holds the trainable tensors alone, at grad_offset, in table order.
  bool trainable = true;
  size_t grad_offset = 0;  // in floats, into the gradient arena (trainable tensors only)
  ParamRole adapts = ParamRole::embedding;  // lora_a / lora_b: the projection adapted (wq … w_down)
  // Held outside the fp32 arena, in the frozen base's narrower format (Model::held, an adapter run
  // with --base-dtype bf16|q8_0): `offset` is then kNotInArena, so an fp32 read of it faults
  // instead of reading another tensor, and `held_offset` counts values into the held store.
  bool held = false;
  size_t held_offset = 0;
  size_t numel() const;
  bool is_matrix() const { return shape.size() == 2; }  // matrices get weight decay, gains don't
};

// A held tensor's `offset`: far outside any buffer (2^61 floats), so a pointer made from it faults.
inline constexpr size_t kNotInArena = size_t(1) << 61;

class ParamTable {
 public:
  // `base`: the format the frozen base matrices of an adapter run are held in; f32 keeps every
  // tensor in the arena. Anything else needs adapters (cfg.lora.rank > 0): full training updates them.
  explicit ParamTable(const ModelConfig& cfg, WeightFormat base = WeightFormat::f32);
  const std::vector<ParamSpec>& specs() const { return specs_; }
  size_t total() const { return total_; }  // floats in the fp32 arena
  size_t held_total() const { return held_total_; }  // values held in the base's format
  WeightFormat base_format() const { return base_; }
  const ParamSpec* find(const std::string& name) const;
  const ParamSpec& at(ParamRole role, int layer = -1) const;  // throws if absent
  // Floats in the gradient arena: the trainable tensors' (total() while every one is).
  size_t grad_total() const { return grad_total_; }
  // Marks each tensor trainable or frozen by `trainable(spec)` and lays the gradient arena out
  // again over the trainable ones. Everything is trainable until this is called.
  void set_trainable(const std::function<bool(const ParamSpec&)>& trainable);

 private:
  std::vector<ParamSpec> specs_;
  size_t total_ = 0, grad_total_ = 0, held_total_ = 0;
  WeightFormat base_ = WeightFormat::f32;
};

// Views into a flat buffer laid out by a ParamTable: the weights, or the gradients.
struct ModelTensors {
  float* embedding;   // (V, D)
  float* final_norm;  // (D)
  float* classifier;  // (V, D): lm_head, or the embedding when tied
  std::vector<LayerTensors> layers;
};

// The weights: every tensor, at its offset into `base`.
ModelTensors bind_tensors(const ParamTable& table, const ModelConfig& cfg, float* base);
// The gradients: each trainable tensor at its grad_offset into `base`, nullptr for a frozen one
// (the stages then skip that weight's gradient product).
ModelTensors bind_gradients(const ParamTable& table, const ModelConfig& cfg, float* base);

// The projection role of a LoRA target name (q → wq, …, down → w_down), and back.
ParamRole lora_target_role(const std::string& target);
const char* lora_target_name(ParamRole projection);
bool is_adapter(const ParamSpec& s);

// The seven projections a layer has (and an adapter may target).
inline bool is_projection(ParamRole r) {
  return r == ParamRole::wq || r == ParamRole::wk || r == ParamRole::wv || r == ParamRole::wo ||
         r == ParamRole::w_gate || r == ParamRole::w_up || r == ParamRole::w_down;
}
// A layer's member for projection `r` (is_projection(r)): LayerTensors' weight pointers and
// LayerAdapters' adapters carry the same seven names.
template <class Layer>
auto& of_projection(Layer& L, ParamRole r) {
  switch (r) {
    case ParamRole::wq: return L.wq;
    case ParamRole::wk: return L.wk;
    case ParamRole::wv: return L.wv;
    case ParamRole::wo: return L.wo;
    case ParamRole::w_gate: return L.w_gate;
    case ParamRole::w_up: return L.w_up;
    default: return L.w_down;
  }
}

}  // namespace anetrain
