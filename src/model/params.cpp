#include "model/params.h"

#include <algorithm>

#include "core/error.h"

namespace anetrain {

size_t ParamSpec::numel() const {
  size_t n = 1;
  for (auto d : shape) n *= size_t(d);
  return n;
}

ParamTable::ParamTable(const ModelConfig& c, WeightFormat base) : base_(base) {
  if (base != WeightFormat::f32 && c.lora.rank <= 0)
    fail("a base held in " + weight_format_name(base) + " needs adapters: full training updates the base");
  const int64_t D = c.dim, F = c.hidden_dim, V = c.vocab_size, hd = c.head_dim;
  auto add = [&](std::string name, std::vector<int64_t> shape, ParamRole role, int layer) {
    ParamSpec s{std::move(name), std::move(shape), role, layer, total_};
    // Base matrices only: the adapters are added after them and are trainable fp32.
    s.held = base != WeightFormat::f32 && s.is_matrix() && role != ParamRole::lora_a && role != ParamRole::lora_b;
    if (s.held) {
      s.offset = kNotInArena;
      s.held_offset = held_total_;
      held_total_ += s.numel();
    } else {
      total_ += s.numel();
    }
    specs_.push_back(std::move(s));
  };
  add("model.embed_tokens.weight", {V, D}, ParamRole::embedding, -1);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {D}, ParamRole::attn_norm, l);
    add(p + "self_attn.q_proj.weight", {int64_t(c.q_dim()), D}, ParamRole::wq, l);
    add(p + "self_attn.k_proj.weight", {int64_t(c.kv_dim()), D}, ParamRole::wk, l);
    add(p + "self_attn.v_proj.weight", {int64_t(c.kv_dim()), D}, ParamRole::wv, l);
    add(p + "self_attn.o_proj.weight", {D, int64_t(c.q_dim())}, ParamRole::wo, l);
    if (c.qk_norm) {
      add(p + "self_attn.q_norm.weight", {hd}, ParamRole::q_norm, l);
      add(p + "self_attn.k_norm.weight", {hd}, ParamRole::k_norm, l);
    }
    add(p + "post_attention_layernorm.weight", {D}, ParamRole::ffn_norm, l);
    add(p + "mlp.gate_proj.weight", {F, D}, ParamRole::w_gate, l);
    add(p + "mlp.up_proj.weight", {F, D}, ParamRole::w_up, l);
    add(p + "mlp.down_proj.weight", {D, F}, ParamRole::w_down, l);
  }
  add("model.norm.weight", {D}, ParamRole::final_norm, -1);
  if (!c.tied_embeddings) add("lm_head.weight", {V, D}, ParamRole::lm_head, -1);
  // Adapters after every base tensor, so the base keeps its offsets (and checkpoints of it their
  // layout); grouped by layer, so each layer's gradients stay one contiguous bucket.
  if (c.lora.rank > 0) {
    for (int l = 0; l < c.n_layers; ++l)
      for (const auto& target : lora_target_names()) {
        if (std::find(c.lora.targets.begin(), c.lora.targets.end(), target) == c.lora.targets.end()) continue;
        // Copied out before add(): adding to the table may move the projection's row.
        const ParamSpec proj = at(lora_target_role(target), l);
        const std::string stem = "base_model.model." + proj.name.substr(0, proj.name.size() - 7);  // less ".weight"
        const int64_t out = proj.shape[0], in = proj.shape[1], r = c.lora.rank;
        add(stem + ".lora_A.weight", {r, in}, ParamRole::lora_a, l);
        specs_.back().adapts = proj.role;
        add(stem + ".lora_B.weight", {r, out}, ParamRole::lora_b, l);
        specs_.back().adapts = proj.role;
      }
    set_trainable([](const ParamSpec& s) { return is_adapter(s); });
    return;
  }
  set_trainable([](const ParamSpec&) { return true; });
}

bool is_adapter(const ParamSpec& s) { return s.role == ParamRole::lora_a || s.role == ParamRole::lora_b; }

ParamRole lora_target_role(const std::string& t) {
  if (t == "q") return ParamRole::wq;
  if (t == "k") return ParamRole::wk;
  if (t == "v") return ParamRole::wv;
  if (t == "o") return ParamRole::wo;
  if (t == "gate") return ParamRole::w_gate;
  if (t == "up") return ParamRole::w_up;
  if (t == "down") return ParamRole::w_down;
  fail("LoRA target '" + t + "' is not one of q, k, v, o, gate, up, down");
}

const char* lora_target_name(ParamRole r) {
  switch (r) {
    case ParamRole::wq: return "q";
    case ParamRole::wk: return "k";
    case ParamRole::wv: return "v";
    case ParamRole::wo: return "o";
    case ParamRole::w_gate: return "gate";
    case ParamRole::w_up: return "up";
    case ParamRole::w_down: return "down";
    default: fail("internal: parameter role " + std::to_string(int(r)) + " is not a LoRA target");
  }
}

void ParamTable::set_trainable(const std::function<bool(const ParamSpec&)>& trainable) {
  grad_total_ = 0;
  for (ParamSpec& s : specs_) {
    s.trainable = !s.held && trainable(s);
    s.grad_offset = s.trainable ? grad_total_ : 0;
    if (s.trainable) grad_total_ += s.numel();
  }
}

const ParamSpec* ParamTable::find(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

const ParamSpec& ParamTable::at(ParamRole role, int layer) const {
  for (const auto& s : specs_)
    if (s.role == role && s.layer == layer) return s;
  fail("internal: parameter role " + std::to_string(int(role)) + " layer " + std::to_string(layer) + " not in table");
}

namespace {
Adapter& adapter_of(LayerAdapters& L, ParamRole projection) {
  if (!is_projection(projection))
    fail("internal: parameter role " + std::to_string(int(projection)) + " has no adapter");
  return of_projection(L, projection);
}

// `where(spec)`: the tensor's address, or nullptr.
ModelTensors bind(const ParamTable& t, const ModelConfig& c, const std::function<float*(const ParamSpec&)>& where) {
  ModelTensors m;
  m.embedding = where(t.at(ParamRole::embedding));
  m.final_norm = where(t.at(ParamRole::final_norm));
  m.classifier = c.tied_embeddings ? m.embedding : where(t.at(ParamRole::lm_head));
  for (int l = 0; l < c.n_layers; ++l) {
    auto p = [&](ParamRole r) { return where(t.at(r, l)); };
    LayerTensors L{};
    L.attn_norm = p(ParamRole::attn_norm);
    L.wq = p(ParamRole::wq);
    L.wk = p(ParamRole::wk);
    L.wv = p(ParamRole::wv);
    L.wo = p(ParamRole::wo);
    L.q_norm = c.qk_norm ? p(ParamRole::q_norm) : nullptr;
    L.k_norm = c.qk_norm ? p(ParamRole::k_norm) : nullptr;
    L.ffn_norm = p(ParamRole::ffn_norm);
    L.w_gate = p(ParamRole::w_gate);
    L.w_up = p(ParamRole::w_up);
    L.w_down = p(ParamRole::w_down);
    if (c.lora.rank > 0) {
      L.lora.rank = c.lora.rank;
      L.lora.scale = float(c.lora.scale());
      for (const ParamSpec& s : t.specs()) {
        if (s.layer != l || !is_adapter(s)) continue;
        Adapter& a = adapter_of(L.lora, s.adapts);
        (s.role == ParamRole::lora_a ? a.a : a.bt) = where(s);
      }
    }
    m.layers.push_back(L);
  }
  return m;
}
}  // namespace

ModelTensors bind_tensors(const ParamTable& t, const ModelConfig& c, float* base) {
  // A held tensor has no fp32 address: Model::bring_layer points a layer's views at fp32 values
  // while its stages run, and the embedding and classifier are read a row range at a time.
  return bind(t, c, [base](const ParamSpec& s) { return s.held ? nullptr : base + s.offset; });
}

ModelTensors bind_gradients(const ParamTable& t, const ModelConfig& c, float* base) {
  return bind(t, c, [base](const ParamSpec& s) { return s.trainable ? base + s.grad_offset : nullptr; });
}

}  // namespace anetrain
