// ModelConfig: the whole architecture as data. Read from JSON presets (configs/*.json, embedded
// in the binary), HF config.json, or a checkpoint header; validated once, trusted afterwards.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "contract/tensors.h"

namespace anetrain {


// Low-rank adapters (LoRA) over the projections. rank 0: none. A model with adapters has a frozen
// base: its parameter table lists the adapters after the base tensors, and only they train.
struct LoraConfig {
  int rank = 0;
  double alpha = 0;                  // the adapter's output is scaled by alpha / rank
  std::vector<std::string> targets;  // among q, k, v, o, gate, up, down (lora_target_names())
  // PEFT's lora_dropout: the probability that training drops an element of an adapter's input
  // (contract/tensors.h AdapterDropout). Training only; inference and merging ignore it.
  double dropout = 0;
  double scale() const { return rank > 0 ? alpha / rank : 0.0; }
};
// The projections an adapter can target, in the order the parameter table lists them.
const std::vector<std::string>& lora_target_names();

struct ModelConfig {
  std::string arch = "llama";  // "llama" | "qwen3"; informational, the fields below decide the math
  int dim = 0;                 // D: residual width
  int n_layers = 0;            // L
  int n_heads = 0;             // Hq: query heads
  int n_kv_heads = 0;          // Hkv: key/value heads; query head h reads kv head h / (Hq/Hkv)
  int head_dim = 0;            // hd: may differ from D/Hq (Qwen3: 128 vs 64)
  int hidden_dim = 0;          // F: SwiGLU width
  int vocab_size = 0;          // V
  int max_seq_len = 0;
  double rope_theta = 10000.0;
  RopeStyle rope_style = RopeStyle::interleaved;
  double norm_eps = 1e-5;
  bool qk_norm = false;          // per-head RMSNorm of q and k before RoPE (Qwen3)
  bool tied_embeddings = true;   // classifier reuses the token embedding
  double residual_scale = 1.0;   // α in x + α·f(x)
  LoraConfig lora;               // adapters (rank 0: none)

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }

  void validate() const;  // throws Error naming the offending field
  // validate(), its error prefixed with where the config came from ("FILE: ...").
  void validate_from(const std::string& source) const;
};

ModelConfig config_from_json(const nlohmann::json& j, const std::string& source);
nlohmann::json config_to_json(const ModelConfig& c);
ModelConfig config_from_file(const std::string& path);

// Built-in presets (stories260k, stories15m, stories42m, stories110m, qwen3-0.6b).
std::vector<std::string> preset_names();
bool is_preset(const std::string& name);
ModelConfig preset_config(const std::string& name);

const char* rope_style_name(RopeStyle s);
// One block of this model at batch shape B×T, as the kernel contract takes it.
BlockDims block_dims(const ModelConfig& c, int B, int T);

}  // namespace anetrain
