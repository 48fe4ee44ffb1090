#include "formats/hf.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"
#include "formats/safetensors.h"

namespace anetrain {

namespace fs = std::filesystem;

ModelConfig config_from_hf_json(const nlohmann::json& j, const std::string& src) {
  if (!j.is_object()) fail(src + ": config.json must be a JSON object");
  auto get_int = [&](const char* key, bool required, int dflt) -> int {
    if (!j.contains(key) || j[key].is_null()) {
      if (required) fail(src + ": config.json lacks required field '" + std::string(key) + "'");
      return dflt;
    }
    if (!j[key].is_number_integer() || j[key].get<int64_t>() < 0 || j[key].get<int64_t>() > INT32_MAX)
      fail(src + ": config.json field '" + std::string(key) + "' must be a non-negative 32-bit integer, got " + j[key].dump());
    return j[key].get<int>();
  };
  auto get_num = [&](const char* key, double dflt) -> double {
    if (!j.contains(key) || j[key].is_null()) return dflt;
    if (!j[key].is_number()) fail(src + ": config.json field '" + std::string(key) + "' must be a number");
    return j[key].get<double>();
  };
  std::string type = j.value("model_type", "llama");
  if (type != "llama" && type != "qwen3")
    fail(src + ": model_type '" + type + "' is not supported (supported: llama, qwen3)");
  ModelConfig c;
  c.arch = type;
  c.dim = get_int("hidden_size", true, 0);
  c.n_layers = get_int("num_hidden_layers", true, 0);
  c.n_heads = get_int("num_attention_heads", true, 0);
  c.n_kv_heads = get_int("num_key_value_heads", false, c.n_heads);
  c.head_dim = get_int("head_dim", false, c.n_heads > 0 ? c.dim / c.n_heads : 0);
  c.hidden_dim = get_int("intermediate_size", true, 0);
  c.vocab_size = get_int("vocab_size", true, 0);
  c.max_seq_len = get_int("max_position_embeddings", false, 2048);
  c.rope_theta = get_num("rope_theta", 10000.0);
  c.norm_eps = get_num("rms_norm_eps", 1e-6);
  c.rope_style = RopeStyle::half;
  c.qk_norm = type == "qwen3";
  c.tied_embeddings = j.value("tie_word_embeddings", type == "qwen3");
  // Not a Hugging Face field: anetrain writes it for models trained with a scaled residual
  // (HF loaders ignore unknown keys, so such a folder still loads elsewhere — as a different model).
  c.residual_scale = get_num("anetrain_residual_scale", 1.0);
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    fail(src + ": rope_scaling is not supported (found " + j["rope_scaling"].dump() + ")");
  c.validate_from(src);
  return c;
}

nlohmann::json config_to_hf_json(const ModelConfig& c) {
  const bool qwen = c.arch == "qwen3" || c.qk_norm;
  nlohmann::json j{{"architectures", {qwen ? "Qwen3ForCausalLM" : "LlamaForCausalLM"}},
                        {"model_type", qwen ? "qwen3" : "llama"},
                        {"hidden_size", c.dim},
                        {"intermediate_size", c.hidden_dim},
                        {"num_hidden_layers", c.n_layers},
                        {"num_attention_heads", c.n_heads},
                        {"num_key_value_heads", c.n_kv_heads},
                        {"head_dim", c.head_dim},
                        {"vocab_size", c.vocab_size},
                        {"max_position_embeddings", c.max_seq_len},
                        {"rope_theta", c.rope_theta},
                        {"rms_norm_eps", c.norm_eps},
                        {"tie_word_embeddings", c.tied_embeddings},
                        {"hidden_act", "silu"},
                        {"attention_bias", false},
                        {"torch_dtype", "float32"}};
  if (c.residual_scale != 1.0) j["anetrain_residual_scale"] = c.residual_scale;
  return j;
}

ModelConfig load_hf_config(const std::string& dir) {
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  std::ifstream in(cfg_path);
  if (!in) fail(dir + ": not a Hugging Face model folder (no config.json)");
  return config_from_hf_json(parse_json_file(in, cfg_path, "config.json"), cfg_path);
}

namespace {

// A sharded checkpoint: model.safetensors.index.json maps every tensor to the shard holding it.
// The map is trusted only after checking it: each shard it names must exist beside the index, and
// each tensor must really be in the shard it is assigned to.
// Where each table row's tensor is read: `sink(i, reader)` for row i of the table.
using TensorSink = std::function<void(size_t, const SafetensorsReader&)>;

void load_sharded(const ParamTable& table, const std::string& dir, const std::string& index_path,
                  const TensorSink& sink) {
  std::ifstream in(index_path);
  nlohmann::json j = parse_json_file(in, index_path, "the shard index");
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    fail(index_path + ": needs a \"weight_map\" object (tensor name → shard file)");
  if (j.contains("metadata") && !j["metadata"].is_object()) fail(index_path + ": \"metadata\" must be an object");
  std::map<std::string, std::unique_ptr<SafetensorsReader>> shards;
  std::map<std::string, const SafetensorsReader*> where;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) fail(index_path + ": weight_map entry '" + it.key() + "' must name a file");
    const std::string file = it.value().get<std::string>();
    // Shards sit beside the index; a path would let an index read files anywhere.
    if (file.empty() || file == "." || file == ".." || file.find_first_of("/\\") != std::string::npos)
      fail(index_path + ": weight_map entry '" + it.key() + "' names '" + file + "', which is not a plain file name");
    auto& r = shards[file];
    if (!r) {
      const fs::path p = fs::path(dir) / file;
      if (!fs::is_regular_file(p))
        fail(index_path + ": shard '" + file + "' (holding '" + it.key() + "') does not exist in " + dir);
      r = std::make_unique<SafetensorsReader>(p.string());
    }
    if (!r->has(it.key()))
      fail(index_path + ": weight_map puts '" + it.key() + "' in '" + file + "', but that shard has no such tensor");
    where[it.key()] = r.get();
  }
  for (size_t i = 0; i < table.specs().size(); ++i) {
    const ParamSpec& s = table.specs()[i];
    auto it = where.find(s.name);
    if (it == where.end()) fail(index_path + ": tensor '" + s.name + "' is missing from weight_map");
    sink(i, *it->second);
  }
}

// Every tensor of the table from the folder's safetensors (sharded by an index, or one or more
// files without one), each handed to `sink` once.
void read_hf_tensors(const ParamTable& table, const std::string& dir, const TensorSink& sink) {
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(index)) return load_sharded(table, dir, index.string(), sink);
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty()) fail(dir + ": no *.safetensors files next to config.json");
  // Without an index, a tensor found in two files is ambiguous: refuse rather than pick one.
  std::vector<std::string> from(table.specs().size());
  for (const auto& f : files) {
    SafetensorsReader r(f);
    for (size_t i = 0; i < table.specs().size(); ++i) {
      const ParamSpec& s = table.specs()[i];
      if (!r.has(s.name)) continue;
      if (!from[i].empty()) fail(dir + ": tensor '" + s.name + "' is in both " + from[i] + " and " + f);
      sink(i, r);
      from[i] = f;
    }
  }
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i].empty()) fail(dir + ": tensor '" + table.specs()[i].name + "' is missing from the safetensors files");
}

// Before anything is allocated for config.json's claim: the folder's safetensors hold at least
// that many parameters (at 2 bytes, the narrowest dtype read), and every tensor has the shape the
// config gives it. A config claiming a vocabulary of 4,194,304 is refused here, not after 1 GB
// of embedding was allocated and zeroed.
void check_hf_holds(const std::string& dir, const ModelConfig& c) {
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  double held = 0;
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors") {
      held += double(e.file_size(ec));
      files.push_back(e.path().string());
    }
  if (claimed_parameters(c) * 2 > held) {
    for (const std::string& f : files) SafetensorsReader validate(f);  // a damaged file says what is wrong with it first
    check_claim_fits(c, cfg_path, held, 2);
  }
  const ParamTable table(c);
  read_hf_tensors(table, dir, [&](size_t i, const SafetensorsReader& r) {
    const ParamSpec& s = table.specs()[i];
    const StTensor& t = r.info(s.name);
    if (t.shape != s.shape)
      fail(cfg_path + ": claims tensor '" + s.name + "' of shape " + shape_str(s.shape) + " but " + r.path() +
           " holds " + shape_str(t.shape) + "; refusing to allocate for it");
  });
}

}  // namespace

std::unique_ptr<Model> load_hf_folder(const std::string& dir, const ModelLayout& layout) {
  const ModelConfig c = load_hf_config(dir);
  check_hf_holds(dir, c);
  auto m = allocate_model(c, (fs::path(dir) / "config.json").string(), layout);
  // The file's tensors are the table's first rows (any adapters follow them).
  read_hf_tensors(ParamTable(c), dir, [&](size_t i, const SafetensorsReader& r) {
    const ParamSpec& s = m->table.specs()[i];
    m->fill_rows(s, [&](float* p, size_t r0, size_t n) { r.read_f32_rows(s.name, s.shape, r0, n, p); });
  });
  return m;
}

std::unique_ptr<PackedModel> load_hf_folder_bf16(const std::string& dir) {
  const ModelConfig c = load_hf_config(dir);
  check_hf_holds(dir, c);
  auto pm = std::make_unique<PackedModel>(c);
  // First only the headers: is every matrix BF16? Otherwise the caller converts through fp32.
  bool all_bf16 = true;
  read_hf_tensors(pm->table, dir, [&](size_t i, const SafetensorsReader& r) {
    const ParamSpec& s = pm->table.specs()[i];
    all_bf16 = all_bf16 && (!s.is_matrix() || r.info(s.name).dtype == DType::bf16);
  });
  if (!all_bf16) return nullptr;
  pm->format = WeightFormat::bf16;
  read_hf_tensors(pm->table, dir, [&](size_t i, const SafetensorsReader& r) {
    const ParamSpec& s = pm->table.specs()[i];
    MatrixRef& m = pm->tensors[i];
    m.rows = s.is_matrix() ? int(s.shape[0]) : 1;
    m.cols = int(s.shape.back());
    const StTensor& t = r.info(s.name);
    if (s.is_matrix() && t.shape == s.shape) {
      m.format = WeightFormat::bf16;
      void* w = pm->own(t.nbytes);
      std::memcpy(w, r.raw(t), t.nbytes);
      m.data = w;
    } else {  // gains, and any wrong shape (read_f32 names it)
      float* f = static_cast<float*>(pm->own(4 * s.numel()));
      r.read_f32(s.name, s.shape, f);
      m.data = f;
    }
  });
  return pm;
}

namespace {

// Within one head of hd rows: half-layout row s·hd/2 + p  ⇔  interleaved row 2p + s.
void permute_heads(float* W, int heads, int hd, int cols, bool to_half) {
  std::vector<float> tmp(size_t(hd) * cols);
  for (int h = 0; h < heads; ++h) {
    float* base = W + size_t(h) * hd * cols;
    for (int p = 0; p < hd / 2; ++p)
      for (int s = 0; s < 2; ++s) {
        int half_row = s * hd / 2 + p, inter_row = 2 * p + s;
        int dst = to_half ? half_row : inter_row, src = to_half ? inter_row : half_row;
        std::copy(base + size_t(src) * cols, base + size_t(src + 1) * cols, tmp.begin() + size_t(dst) * cols);
      }
    std::copy(tmp.begin(), tmp.end(), base);
  }
}

void permute_all(Model& m, bool to_half) {
  const ModelConfig& c = m.cfg;
  if (c.rope_style == RopeStyle::none)
    fail("the model has no RoPE (rope_style \"none\", as the seed system's version 2 and early version 3 runs "
         "trained): GGUF, Hugging Face and llama2.c readers always rotate queries and keys, so no file of theirs "
         "computes this model");
  for (int l = 0; l < c.n_layers; ++l) {
    permute_heads(m.w.layers[l].wq, c.n_heads, c.head_dim, c.dim, to_half);
    permute_heads(m.w.layers[l].wk, c.n_kv_heads, c.head_dim, c.dim, to_half);
    // q_norm/k_norm gains are per element of a head, so they move with the rows.
    if (c.qk_norm) {
      permute_heads(m.w.layers[l].q_norm, 1, c.head_dim, 1, to_half);
      permute_heads(m.w.layers[l].k_norm, 1, c.head_dim, 1, to_half);
    }
  }
  m.cfg.rope_style = to_half ? RopeStyle::half : RopeStyle::interleaved;
}

}  // namespace

void permute_rope_to_half(Model& m) {
  if (m.cfg.rope_style != RopeStyle::half) permute_all(m, true);
}

void permute_rope_to_interleaved(Model& m) {
  if (m.cfg.rope_style != RopeStyle::interleaved) permute_all(m, false);
}

const Model& in_rope_style(const Model& src, RopeStyle style, std::unique_ptr<Model>& copy) {
  if (src.cfg.rope_style == style) return src;
  copy = std::make_unique<Model>(src.cfg);
  copy->params = src.params;
  permute_all(*copy, style == RopeStyle::half);
  return *copy;
}

void save_hf_folder(const Model& src, const std::string& dir, DType dtype) {
  if (src.cfg.lora.rank > 0) fail("internal: a model with adapters is written as a plain model before merge_adapters");
  std::error_code ec;
  const bool existed = fs::exists(dir, ec);
  fs::create_directories(dir);
  const fs::path weights_path = fs::path(dir) / "model.safetensors", config_path = fs::path(dir) / "config.json";
  bool weights_committed = false;
  try {
    std::unique_ptr<Model> copy;
    const Model* m = &in_rope_style(src, RopeStyle::half, copy);
    std::vector<StWriteItem> items;
    for (const auto& s : m->table.specs()) items.push_back({s.name, s.shape, m->params.data() + s.offset});
    // Both files written in full before either is renamed into place: running out of space
    // leaves the folder as it was, never a new model.safetensors beside an old config.json.
    AtomicFile weights(weights_path.string()), config(config_path.string());
    write_safetensors(weights, items, dtype);
    const std::string cfg = config_to_hf_json(m->cfg).dump(2) + "\n";
    config.write(cfg.data(), cfg.size());
    weights.commit();
    weights_committed = true;
    config.commit();
  } catch (...) {
    if (!existed) {  // a folder this call created holds nothing of the user's: leave no trace
      if (weights_committed) fs::remove(weights_path, ec);
      fs::remove(dir, ec);
    }
    throw;
  }
}

}  // namespace anetrain
