#include "formats/checkpoint_model.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/warn.h"
#include "formats/anck.h"

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

std::unique_ptr<Model> load_model_checkpoint(const std::string& path) {
  const std::string file = find_model_anck(path);
  if (file.empty()) fail(path + ": not an anetrain checkpoint, step directory or run directory");
  AnckReader r(file);
  if (r.kind() != "model") fail(file + ": checkpoint kind is '" + r.kind() + "', expected 'model'");
  if (!r.meta().is_object() || !r.meta().contains("config"))
    fail(file + ": checkpoint header has no model config (meta.config)");
  const ModelConfig cfg = config_from_json(r.meta()["config"], file);
  check_anck_holds(r, cfg);  // the header's claim against the file's tensors, before allocating
  auto m = allocate_model(cfg, file);
  for (const auto& s : m->table.specs()) r.read(s.name, s.shape, m->param(s));
  return m;
}

void read_checkpoint_weights(const std::string& step_dir, Model& m) {
  AnckReader w((fs::path(step_dir) / "model.anck").string());
  for (const auto& s : m.table.specs()) w.read(s.name, s.shape, m.param(s));
  m.touch();
}

}  // namespace anetrain
