#include "formats/peft.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"
#include "core/mapped_file.h"
#include "formats/checkpoint_model.h"
#include "formats/safetensors.h"

namespace anetrain {

namespace fs = std::filesystem;

namespace {

// (rows, cols) row-major → (cols, rows) row-major.
void transpose(const float* src, float* dst, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[size_t(c) * size_t(rows) + size_t(r)] = src[size_t(r) * size_t(cols) + size_t(c)];
}

std::string target_of_module(const std::string& module, const std::string& where) {
  for (const auto& t : lora_target_names())
    if (peft_module_name(t) == module) return t;
  fail(where + ": 'target_modules' names '" + module +
       "', which anetrain does not adapt (it adapts q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
}

}  // namespace

std::string peft_module_name(const std::string& target) { return target + "_proj"; }

std::string adapter_folder(const std::string& path) {
  std::error_code ec;
  if (fs::exists(fs::path(path) / "adapter_config.json", ec) || !fs::exists(fs::path(path) / "run.json", ec)) return path;
  const std::optional<std::string> newest = latest_checkpoint(path);
  if (!newest) fail(path + ": a run folder with no complete checkpoint, so no adapters to read");
  if (!fs::exists(fs::path(*newest) / "adapter_config.json", ec))
    fail(path + ": a run without adapters (its checkpoints hold the whole model): give it as the MODEL, not as --lora "
         "or ADAPTER_DIR");
  return *newest;
}

LoraConfig read_peft_config(const std::string& dir) {
  const std::string path = (fs::path(dir) / "adapter_config.json").string();
  std::ifstream in(path);
  if (!in) fail(path + ": cannot open (an adapter folder holds adapter_config.json and adapter_model.safetensors)");
  const nlohmann::json j = parse_json_file(in, path, "adapter config");
  if (!j.is_object()) fail(path + ": must be a JSON object");
  auto refuse_if = [&](const char* key, bool bad, const std::string& why) {
    if (j.contains(key) && bad) fail(path + ": '" + key + "' = " + j.at(key).dump() + ": " + why);
  };
  refuse_if("peft_type", j.value("peft_type", std::string("LORA")) != "LORA", "only LoRA adapters are supported");
  refuse_if("use_rslora", j.value("use_rslora", false), "rank-stabilised scaling (α/√r) is not supported");
  refuse_if("use_dora", j.value("use_dora", false), "DoRA adapters are not supported");
  refuse_if("bias", j.value("bias", std::string("none")) != "none", "adapter biases are not supported");
  refuse_if("fan_in_fan_out", j.value("fan_in_fan_out", false), "transposed (Conv1D) layouts are not supported");
  refuse_if("rank_pattern", !j.value("rank_pattern", nlohmann::json::object()).empty(), "per-module ranks are not supported");
  refuse_if("alpha_pattern", !j.value("alpha_pattern", nlohmann::json::object()).empty(), "per-module alphas are not supported");
  LoraConfig c;
  if (!j.contains("r") || !j.at("r").is_number_integer()) fail(path + ": 'r' (the rank) must be an integer");
  c.rank = j.at("r").get<int>();
  if (!j.contains("lora_alpha") || !j.at("lora_alpha").is_number()) fail(path + ": 'lora_alpha' must be a number");
  c.alpha = j.at("lora_alpha").get<double>();
  if (!j.contains("target_modules") || !j.at("target_modules").is_array())
    fail(path + ": 'target_modules' must be a list of module names (a pattern string is not supported)");
  std::set<std::string> named;
  for (const auto& m : j.at("target_modules")) {
    if (!m.is_string()) fail(path + ": 'target_modules' must be a list of module names");
    named.insert(target_of_module(m.get<std::string>(), path));
  }
  for (const auto& t : lora_target_names())  // the table's order, whatever order the file lists them in
    if (named.count(t)) c.targets.push_back(t);
  if (c.rank < 1 || c.rank > 4096) fail(path + ": 'r' must be in [1, 4096], got " + std::to_string(c.rank));
  if (!(c.alpha > 0)) fail(path + ": 'lora_alpha' must be > 0");
  if (c.targets.empty()) fail(path + ": 'target_modules' names no module");
  // How the adapter was trained; kept (a run continued from it drops as it did), never applied
  // outside training.
  if (j.contains("lora_dropout")) {
    const auto& p = j.at("lora_dropout");
    if (!p.is_number() || !(p.get<double>() >= 0 && p.get<double>() < 1))
      fail(path + ": 'lora_dropout' must be a number in [0, 1), got " + p.dump());
    c.dropout = p.get<double>();
  }
  return c;
}

void load_peft_adapter(Model& m, const std::string& dir) {
  const LoraConfig c = read_peft_config(dir);
  m.add_adapters(c);
  const std::string path = (fs::path(dir) / "adapter_model.safetensors").string();
  if (!fs::exists(path)) fail(path + ": missing (PEFT's older adapter_model.bin is a pickle; save with safetensors)");
  const SafetensorsReader r(path);
  std::set<std::string> used;
  for (const ParamSpec& s : m.table.specs()) {
    if (!is_adapter(s)) continue;
    if (!r.has(s.name))
      fail(path + ": tensor '" + s.name + "' is missing (adapter_config.json's target_modules and r imply it)");
    float* dst = m.param(s);
    if (s.role == ParamRole::lora_a) {
      r.read_f32(s.name, s.shape, dst);
    } else {  // PEFT's B is (out, r); the table holds (r, out)
      std::vector<float> b(s.numel());
      r.read_f32(s.name, {s.shape[1], s.shape[0]}, b.data());
      transpose(b.data(), dst, s.shape[1], s.shape[0]);
    }
    used.insert(s.name);
  }
  for (const auto& [name, t] : r.tensors())
    if (!used.count(name))
      fail(path + ": tensor '" + name + "' is not an adapter this model has (layers " + std::to_string(m.cfg.n_layers) +
           ", targets from adapter_config.json)");
  m.touch();
}

std::vector<StWriteItem> peft_tensors(const Model& m, bool gradients, std::vector<std::vector<float>>& storage) {
  std::vector<StWriteItem> items;
  storage.clear();
  for (const ParamSpec& s : m.table.specs()) {
    if (!is_adapter(s)) continue;
    const float* src = gradients ? (s.trainable ? m.grads.data() + s.grad_offset : nullptr) : m.params.data() + s.offset;
    if (!src) fail("internal: adapter '" + s.name + "' has no gradient");
    if (s.role == ParamRole::lora_a) {
      items.push_back({s.name, s.shape, src});
      continue;
    }
    storage.emplace_back(s.numel());
    transpose(src, storage.back().data(), s.shape[0], s.shape[1]);
    items.push_back({s.name, {s.shape[1], s.shape[0]}, storage.back().data()});
  }
  return items;
}

void save_peft_adapter(const Model& m, const std::string& dir, const std::string& base_model) {
  if (m.cfg.lora.rank <= 0) fail("internal: the model has no adapters to save");
  fs::create_directories(dir);
  nlohmann::json modules = nlohmann::json::array();
  for (const auto& t : m.cfg.lora.targets) modules.push_back(peft_module_name(t));
  const nlohmann::json j = {{"peft_type", "LORA"},          {"task_type", "CAUSAL_LM"},
                            {"r", m.cfg.lora.rank},         {"lora_alpha", m.cfg.lora.alpha},
                            {"lora_dropout", m.cfg.lora.dropout},          {"target_modules", modules},
                            {"bias", "none"},               {"fan_in_fan_out", false},
                            {"use_rslora", false},          {"use_dora", false},
                            {"base_model_name_or_path", base_model}, {"inference_mode", true}};
  const std::string text = j.dump(2) + "\n";
  std::vector<std::vector<float>> storage;
  write_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), peft_tensors(m, false, storage), DType::f32);
  write_file_atomic((fs::path(dir) / "adapter_config.json").string(), text.data(), text.size());
}

}  // namespace anetrain
