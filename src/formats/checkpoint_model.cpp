#include "formats/checkpoint_model.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/warn.h"
#include "formats/anck.h"
#include "formats/load.h"

namespace anetrain {

namespace fs = std::filesystem;

const char* const kRunFormat = "anetrain-run";

nlohmann::json read_run_json(const std::string& dir) {
  const std::string path = (fs::path(dir) / "run.json").string();
  std::ifstream in(path);
  if (!in) fail(dir + ": not a run folder (no run.json)");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(path + ": not valid JSON settings");
  return j;
}

bool marked_run_json(const nlohmann::json& j) {
  return j.contains("format") && j["format"].is_string() && j["format"] == kRunFormat;
}

std::optional<std::vector<int64_t>> listed_checkpoints(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(fs::path(dir) / "run.json", ec)) return std::nullopt;
  nlohmann::json j;
  try {
    j = read_run_json(dir);
  } catch (const Error&) {
    return std::nullopt;
  }
  if (!marked_run_json(j)) return std::nullopt;
  std::vector<int64_t> steps;
  if (j.contains("checkpoints") && j["checkpoints"].is_array())
    for (const auto& s : j["checkpoints"])
      if (s.is_number_integer()) steps.push_back(s.get<int64_t>());
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

std::optional<int64_t> parse_step_dir_name(const std::string& name) {
  if (name.size() < 13 || name.rfind("step-", 0) != 0) return std::nullopt;
  if (name.find_first_not_of("0123456789", 5) != std::string::npos || name.size() > 5 + 18) return std::nullopt;
  const int64_t step = std::stoll(name.substr(5));
  if (step_dir_name(step) != name) return std::nullopt;  // only the canonical spelling is ours
  return step;
}

std::vector<int64_t> checkpoints_on_disk(const std::string& run_dir) {
  std::vector<int64_t> out;
  const fs::path ck = fs::path(run_dir) / "ckpt";
  std::error_code ec;
  if (!fs::is_directory(ck, ec)) return out;
  for (const auto& e : fs::directory_iterator(ck, ec)) {
    const auto step = parse_step_dir_name(e.path().filename().string());
    if (step && e.is_directory(ec) && fs::is_regular_file(e.path() / "model.anck", ec) &&
        fs::is_regular_file(e.path() / "state.anck", ec))
      out.push_back(*step);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  const auto listed = listed_checkpoints(run_dir);
  return latest_checkpoint(run_dir, listed ? *listed : checkpoints_on_disk(run_dir));
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir, const std::vector<int64_t>& steps) {
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    const fs::path dir = fs::path(run_dir) / "ckpt" / step_dir_name(*it);
    try {
      AnckReader a((dir / "model.anck").string());
      AnckReader b((dir / "state.anck").string());
      return dir.string();
    } catch (const Error& e) {
      warn("skipping unreadable checkpoint " + dir.string() + ": " + e.what());
    }
  }
  return std::nullopt;
}

std::string find_model_anck(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return fs::path(path).extension() == ".anck" ? path : "";
  if (fs::is_regular_file(fs::path(path) / "model.anck", ec)) return (fs::path(path) / "model.anck").string();
  if (fs::is_directory(fs::path(path) / "ckpt", ec)) {
    auto latest = latest_checkpoint(path);
    if (!latest) fail(path + ": run directory has no complete checkpoint");
    return (fs::path(*latest) / "model.anck").string();
  }
  return "";
}

nlohmann::json held_base_json(const Model& m) {
  if (!m.held) return nullptr;
  char fp[24];
  std::snprintf(fp, sizeof fp, "%016llx", static_cast<unsigned long long>(m.held->fingerprint()));
  return {{"model", m.base_source.model},
          {"seed", m.base_source.seed},
          {"dtype", weight_format_name(m.held->format())},
          {"fingerprint", std::string(fp)}};
}

namespace {
// The base a held checkpoint names, loaded again in its layout; its fingerprint must match.
std::unique_ptr<Model> reload_held_base(const std::string& file, const nlohmann::json& ref, const ModelConfig& cfg) {
  if (!ref.is_object() || !ref.contains("model") || !ref["model"].is_string() || !ref.contains("dtype") ||
      !ref["dtype"].is_string() || !ref.contains("seed") || !ref["seed"].is_number_unsigned() ||
      !ref.contains("fingerprint") || !ref["fingerprint"].is_string())
    fail(file + ": meta.held_base must hold model, seed, dtype and fingerprint");
  if (cfg.lora.rank <= 0) fail(file + ": meta.held_base without adapters in meta.config");
  ModelConfig base_cfg = cfg;
  const ModelLayout layout{cfg.lora, parse_base_dtype(ref["dtype"].get<std::string>(), file + ": meta.held_base.dtype")};
  const std::string base = ref["model"].get<std::string>();
  auto m = load_model(base, ref["seed"].get<uint64_t>(), layout).model;
  base_cfg.lora = m->cfg.lora;
  if (config_to_json(base_cfg) != config_to_json(m->cfg))
    fail(file + ": its base " + base + " now has another config than the one the run trained on");
  if (held_base_json(*m)["fingerprint"] != ref["fingerprint"])
    fail(file + ": its base " + base + " has changed since the run started (fingerprint " +
         held_base_json(*m)["fingerprint"].get<std::string>() + ", the checkpoint's " +
         ref["fingerprint"].get<std::string>() + ")");
  return m;
}

// The same model with every tensor in the fp32 arena: the held matrices' exact values.
std::unique_ptr<Model> unheld(const Model& src) {
  auto m = std::make_unique<Model>(src.cfg);
  for (size_t i = 0; i < src.table.specs().size(); ++i) {
    const ParamSpec& s = src.table.specs()[i];
    src.read_rows(s, 0, s.is_matrix() ? size_t(s.shape[0]) : 1, m->param(m->table.specs()[i]));
  }
  m->touch();
  return m;
}
}  // namespace

std::unique_ptr<Model> load_model_checkpoint(const std::string& path, bool keep_held) {
  const std::string file = find_model_anck(path);
  if (file.empty()) fail(path + ": not an anetrain checkpoint, step directory or run directory");
  AnckReader r(file);
  if (r.kind() != "model") fail(file + ": checkpoint kind is '" + r.kind() + "', expected 'model'");
  if (!r.meta().is_object() || !r.meta().contains("config"))
    fail(file + ": checkpoint header has no model config (meta.config)");
  const ModelConfig cfg = config_from_json(r.meta()["config"], file);
  if (r.meta().contains("held_base")) {
    auto m = reload_held_base(file, r.meta()["held_base"], cfg);
    for (const auto& s : m->table.specs())
      if (!s.held) r.read(s.name, s.shape, m->param(s));
    m->touch();
    return keep_held ? std::move(m) : unheld(*m);
  }
  check_anck_holds(r, cfg);  // the header's claim against the file's tensors, before allocating
  auto m = allocate_model(cfg, file);
  for (const auto& s : m->table.specs()) r.read(s.name, s.shape, m->param(s));
  return m;
}

void read_checkpoint_weights(const std::string& step_dir, Model& m) {
  AnckReader w((fs::path(step_dir) / "model.anck").string());
  for (const auto& s : m.table.specs())
    if (!s.held) w.read(s.name, s.shape, m.param(s));
  m.touch();
}

}  // namespace anetrain
