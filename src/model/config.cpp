#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <type_traits>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"
#include "model/presets.h"

namespace anetrain {

const char* rope_style_name(RopeStyle s) {
  return s == RopeStyle::half ? "half" : s == RopeStyle::none ? "none" : "interleaved";
}

void ModelConfig::validate_from(const std::string& source) const {
  try {
    validate();
  } catch (const Error& e) {
    fail(source + ": " + e.what());
  }
}

void ModelConfig::validate() const {
  auto positive = [](const char* field, long v) {
    if (v <= 0) fail("model config: field '" + std::string(field) + "' must be > 0, got " + std::to_string(v));
  };
  positive("dim", dim);
  positive("n_layers", n_layers);
  positive("n_heads", n_heads);
  positive("n_kv_heads", n_kv_heads);
  positive("head_dim", head_dim);
  positive("hidden_dim", hidden_dim);
  positive("vocab_size", vocab_size);
  positive("max_seq_len", max_seq_len);
  if (n_heads % n_kv_heads != 0)
    fail("model config: field 'n_kv_heads' (" + std::to_string(n_kv_heads) + ") must divide 'n_heads' (" +
         std::to_string(n_heads) + ")");
  if (head_dim % 2 != 0) fail("model config: field 'head_dim' must be even for RoPE, got " + std::to_string(head_dim));
  if (head_dim > 1024) fail("model config: field 'head_dim' must be ≤ 1024, got " + std::to_string(head_dim));
  // Widths are ints everywhere downstream (q_dim = n_heads·head_dim): refuse what would overflow.
  if (int64_t(n_heads) * head_dim > std::numeric_limits<int>::max())
    fail("model config: 'n_heads' × 'head_dim' (" + std::to_string(n_heads) + " × " + std::to_string(head_dim) +
         ") is too large");
  if (!(rope_theta > 0)) fail("model config: field 'rope_theta' must be > 0");
  if (!(norm_eps > 0)) fail("model config: field 'norm_eps' must be > 0");
  if (!(residual_scale > 0)) fail("model config: field 'residual_scale' must be > 0");
  if (lora.rank < 0 || lora.rank > 4096) fail("model config: field 'lora.rank' must be in [0, 4096], got " + std::to_string(lora.rank));
  if (lora.rank > 0) {
    if (!(lora.alpha > 0) || !std::isfinite(lora.alpha)) fail("model config: field 'lora.alpha' must be a finite number > 0");
    if (lora.targets.empty()) fail("model config: field 'lora.targets' must name at least one projection");
    if (!(lora.dropout >= 0 && lora.dropout < 1))
      fail("model config: field 'lora.dropout' must be in [0, 1), got " + std::to_string(lora.dropout));
    std::set<std::string> seen;
    for (const auto& t : lora.targets) {
      const auto& names = lora_target_names();
      if (std::find(names.begin(), names.end(), t) == names.end())
        fail("model config: LoRA target '" + t + "' is not one of q, k, v, o, gate, up, down");
      if (!seen.insert(t).second) fail("model config: LoRA target '" + t + "' is named twice");
    }
  }
  if (arch != "llama" && arch != "qwen3") fail("model config: field 'arch' must be \"llama\" or \"qwen3\", got \"" + arch + "\"");
}

namespace {

const std::set<std::string> kKnownKeys = {"arch", "dim", "n_layers", "n_heads", "n_kv_heads", "head_dim",
                                          "hidden_dim", "vocab_size", "max_seq_len", "rope_theta", "rope_style",
                                          "norm_eps", "qk_norm", "tied_embeddings", "residual_scale", "lora"};

// nlohmann's get<int>() silently converts 64.9, true and 2^32+1; a config is stricter than that.
template <typename T>
void read_field(const nlohmann::json& j, const char* key, T& out, const std::string& source) {
  if (!j.contains(key)) return;
  const auto& v = j.at(key);
  auto wrong = [&](const char* want) {
    fail(source + ": model config field '" + key + "' must be " + want + ", got " + v.dump());
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) wrong("true or false");
    out = v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) wrong("an integer");
    const int64_t x = v.get<int64_t>();
    if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max()) wrong("an integer in range");
    out = T(x);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) wrong("a number");
    out = v.get<T>();
  } else {
    if (!v.is_string()) wrong("a string");
    out = v.get<std::string>();
  }
}

}  // namespace

ModelConfig config_from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail(source + ": model config must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!kKnownKeys.count(it.key())) fail(source + ": unknown model config field '" + it.key() + "'");
  ModelConfig c;
  read_field(j, "arch", c.arch, source);
  read_field(j, "dim", c.dim, source);
  read_field(j, "n_layers", c.n_layers, source);
  read_field(j, "n_heads", c.n_heads, source);
  read_field(j, "n_kv_heads", c.n_kv_heads, source);
  c.n_kv_heads = j.contains("n_kv_heads") ? c.n_kv_heads : c.n_heads;
  read_field(j, "head_dim", c.head_dim, source);
  if (!j.contains("head_dim") && c.n_heads > 0) c.head_dim = c.dim / c.n_heads;
  read_field(j, "hidden_dim", c.hidden_dim, source);
  read_field(j, "vocab_size", c.vocab_size, source);
  read_field(j, "max_seq_len", c.max_seq_len, source);
  read_field(j, "rope_theta", c.rope_theta, source);
  std::string style = "interleaved";
  read_field(j, "rope_style", style, source);
  if (style == "interleaved") c.rope_style = RopeStyle::interleaved;
  else if (style == "half") c.rope_style = RopeStyle::half;
  else if (style == "none") c.rope_style = RopeStyle::none;
  else fail(source + ": model config field 'rope_style' must be \"interleaved\", \"half\" or \"none\", got \"" + style + "\"");
  read_field(j, "norm_eps", c.norm_eps, source);
  read_field(j, "qk_norm", c.qk_norm, source);
  read_field(j, "tied_embeddings", c.tied_embeddings, source);
  read_field(j, "residual_scale", c.residual_scale, source);
  if (j.contains("lora")) {
    const auto& l = j.at("lora");
    if (!l.is_object()) fail(source + ": model config field 'lora' must be an object");
    for (auto it = l.begin(); it != l.end(); ++it)
      if (it.key() != "rank" && it.key() != "alpha" && it.key() != "targets" && it.key() != "dropout")
        fail(source + ": unknown model config field 'lora." + it.key() + "'");
    read_field(l, "rank", c.lora.rank, source);
    read_field(l, "alpha", c.lora.alpha, source);
    read_field(l, "dropout", c.lora.dropout, source);
    if (l.contains("targets")) {
      const auto& t = l.at("targets");
      if (!t.is_array()) fail(source + ": model config field 'lora.targets' must be an array of names");
      for (const auto& name : t) {
        if (!name.is_string()) fail(source + ": model config field 'lora.targets' must be an array of names");
        c.lora.targets.push_back(name.get<std::string>());
      }
    }
  }
  c.validate_from(source);
  return c;
}

nlohmann::json config_to_json(const ModelConfig& c) {
  nlohmann::json j{{"arch", c.arch},           {"dim", c.dim},
                        {"n_layers", c.n_layers},   {"n_heads", c.n_heads},
                        {"n_kv_heads", c.n_kv_heads}, {"head_dim", c.head_dim},
                        {"hidden_dim", c.hidden_dim}, {"vocab_size", c.vocab_size},
                        {"max_seq_len", c.max_seq_len}, {"rope_theta", c.rope_theta},
                        {"rope_style", rope_style_name(c.rope_style)}, {"norm_eps", c.norm_eps},
                        {"qk_norm", c.qk_norm},     {"tied_embeddings", c.tied_embeddings},
                        {"residual_scale", c.residual_scale}};
  // Written only with adapters, so every plain model's config reads exactly as before.
  if (c.lora.rank > 0) j["lora"] = {{"rank", c.lora.rank}, {"alpha", c.lora.alpha}, {"targets", c.lora.targets}};
  if (c.lora.rank > 0 && c.lora.dropout > 0) j["lora"]["dropout"] = c.lora.dropout;  // as before without it
  return j;
}

const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names = {"q", "k", "v", "o", "gate", "up", "down"};
  return names;
}

ModelConfig config_from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path + ": cannot open model config");
  return config_from_json(parse_json_file(in, path, "model config"), path);
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : builtin_presets()) names.push_back(p.name);
  return names;
}

bool is_preset(const std::string& name) {
  for (const auto& p : builtin_presets())
    if (p.name == name) return true;
  return false;
}

ModelConfig preset_config(const std::string& name) {
  for (const auto& p : builtin_presets())
    if (p.name == name) return config_from_json(nlohmann::json::parse(p.json), "preset " + name);
  std::string list;
  for (const auto& n : preset_names()) list += (list.empty() ? "" : ", ") + n;
  fail("unknown model preset '" + name + "' (presets: " + list + ")");
}

BlockDims block_dims(const ModelConfig& c, int B, int T) {
  return BlockDims{B,
                   T,
                   c.dim,
                   c.n_heads,
                   c.n_kv_heads,
                   c.head_dim,
                   c.hidden_dim,
                   float(c.norm_eps),
                   float(c.residual_scale),
                   float(c.rope_theta),
                   c.rope_style,
                   c.qk_norm,
                   -1,
                   c.lora.rank};
}

}  // namespace anetrain
