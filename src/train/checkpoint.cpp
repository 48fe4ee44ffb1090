#include "train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/anck.h"

namespace anetrain {

namespace fs = std::filesystem;

namespace {

std::vector<std::pair<int64_t, fs::path>> step_dirs(const std::string& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  const fs::path ck = fs::path(run_dir) / "ckpt";
  std::error_code ec;
  if (!fs::is_directory(ck, ec)) return out;
  for (const auto& e : fs::directory_iterator(ck)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name.rfind("step-", 0) != 0 || name.find(".tmp") != std::string::npos) continue;
    try {
      out.push_back({std::stoll(name.substr(5)), e.path()});
    } catch (const std::exception&) {
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Deleting a checkpoint directory is not atomic: rename it out of the step-N namespace first,
// so that a crash mid-delete can only leave a *.tmp* directory, never a half-empty step-N.
void remove_step_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  const fs::path doomed = dir.string() + ".tmp.del";
  fs::remove_all(doomed, ec);
  fs::rename(dir, doomed, ec);
  fsync_dir(dir.parent_path().string());
  fs::remove_all(ec ? dir : doomed, ec);
}

nlohmann::json sampler_json(const SamplerState& s) {
  return {{"rng", s.rng}, {"epoch", s.epoch}, {"cursor", s.cursor}};
}

}  // namespace

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

std::string save_checkpoint(const std::string& run_dir, const Model& m, AdamW& opt, const TrainState& st) {
  for (float v : m.params)
    if (!std::isfinite(v)) fail("refusing to checkpoint non-finite weights at step " + std::to_string(st.step));
  const fs::path ck = fs::path(run_dir) / "ckpt";
  fs::create_directories(ck);
  const fs::path final_dir = ck / step_dir_name(st.step);
  const fs::path tmp = ck / (step_dir_name(st.step) + ".tmp");
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  std::vector<AnckTensorIn> weights, state;
  for (const auto& s : m.table.specs()) {
    weights.push_back({s.name, s.shape, m.params.data() + s.offset});
    state.push_back({"adam_m/" + s.name, s.shape, opt.m1().data() + s.offset});
    state.push_back({"adam_v/" + s.name, s.shape, opt.m2().data() + s.offset});
  }
  write_anck((tmp / "model.anck").string(), "model", {{"config", config_to_json(m.cfg)}, {"step", st.step}}, weights);
  nlohmann::json meta = {{"step", st.step},
                         {"adam_t", opt.steps_taken()},
                         {"sampler", sampler_json(st.sampler)},
                         {"tokens_seen", st.tokens_seen},
                         {"best_val", std::isfinite(st.best_val) ? nlohmann::json(st.best_val) : nlohmann::json()},
                         {"best_step", st.best_step},
                         {"nonfinite_consecutive", st.nonfinite_consecutive},
                         {"nonfinite_total", st.nonfinite_total},
                         {"loss_scale", st.loss_scale},
                         {"loss_scale_clean", st.loss_scale_clean},
                         {"overflow_total", st.overflow_total},
                         {"last_loss", st.last_loss},
                         {"world_size", st.world_size}};
  write_anck((tmp / "state.anck").string(), "train_state", meta, state);
  fsync_dir(tmp.string());
  remove_step_dir(final_dir);  // a same-step checkpoint from an earlier, interrupted life
  fs::rename(tmp, final_dir);
  fsync_dir(ck.string());
  return final_dir.string();
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  auto dirs = step_dirs(run_dir);
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    try {
      AnckReader a((it->second / "model.anck").string());
      AnckReader b((it->second / "state.anck").string());
      return it->second.string();
    } catch (const Error& e) {
      std::fprintf(stderr, "anetrain: skipping unreadable checkpoint %s: %s\n", it->second.c_str(), e.what());
    }
  }
  return std::nullopt;
}

void load_checkpoint(const std::string& step_dir, Model& m, AdamW* opt, TrainState* st) {
  AnckReader w((fs::path(step_dir) / "model.anck").string());
  for (const auto& s : m.table.specs()) w.read(s.name, s.shape, m.params.data() + s.offset);
  m.touch();
  if (!opt && !st) return;
  AnckReader r((fs::path(step_dir) / "state.anck").string());
  const auto& meta = r.meta();
  // Integers are type-checked before get<>: nlohmann converts an out-of-range double silently (UB).
  auto integer = [&](const nlohmann::json& v, const char* key) -> int64_t {
    if (!v.is_number_integer()) fail(r.path() + ": training state field '" + key + "' must be an integer");
    return v.get<int64_t>();
  };
  auto u64 = [&](const nlohmann::json& v, const char* key) -> uint64_t {
    if (!v.is_number_unsigned()) fail(r.path() + ": training state field '" + key + "' must be a non-negative integer");
    return v.get<uint64_t>();
  };
  auto number = [&](const nlohmann::json& v, const char* key) -> double {
    if (!v.is_number()) fail(r.path() + ": training state field '" + key + "' must be a number");
    return v.get<double>();
  };
  try {
    if (opt) {
      for (const auto& s : m.table.specs()) {
        r.read("adam_m/" + s.name, s.shape, opt->m1().data() + s.offset);
        r.read("adam_v/" + s.name, s.shape, opt->m2().data() + s.offset);
      }
      opt->set_steps_taken(integer(meta.at("adam_t"), "adam_t"));
    }
    if (st) {
      st->step = integer(meta.at("step"), "step");
      const auto& rng = meta.at("sampler").at("rng");
      if (!rng.is_array() || rng.size() != 4) fail(r.path() + ": training state field 'sampler.rng' must hold 4 integers");
      for (size_t i = 0; i < 4; ++i) st->sampler.rng[i] = u64(rng[i], "sampler.rng");
      st->sampler.epoch = u64(meta.at("sampler").at("epoch"), "sampler.epoch");
      st->sampler.cursor = u64(meta.at("sampler").at("cursor"), "sampler.cursor");
      st->tokens_seen = u64(meta.at("tokens_seen"), "tokens_seen");
      st->best_val = meta.at("best_val").is_null() ? std::numeric_limits<double>::infinity()
                                                   : number(meta.at("best_val"), "best_val");
      st->best_step = integer(meta.at("best_step"), "best_step");
      st->nonfinite_consecutive = int(integer(meta.at("nonfinite_consecutive"), "nonfinite_consecutive"));
      st->nonfinite_total = integer(meta.at("nonfinite_total"), "nonfinite_total");
      st->loss_scale = number(meta.at("loss_scale"), "loss_scale");
      // Absent in checkpoints written before loss scaling existed (fp32 runs): zero.
      st->loss_scale_clean = meta.contains("loss_scale_clean") ? integer(meta.at("loss_scale_clean"), "loss_scale_clean") : 0;
      st->overflow_total = meta.contains("overflow_total") ? integer(meta.at("overflow_total"), "overflow_total") : 0;
      st->last_loss = number(meta.at("last_loss"), "last_loss");
      // Absent before data parallel training existed: one process.
      st->world_size = meta.contains("world_size") ? int(integer(meta.at("world_size"), "world_size")) : 1;
    }
  } catch (const nlohmann::json::exception& e) {
    fail(r.path() + ": malformed training state: " + e.what());
  }
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
  auto m = std::make_unique<Model>(config_from_json(r.meta()["config"], file));
  for (const auto& s : m->table.specs()) r.read(s.name, s.shape, m->param(s));
  return m;
}

void prune_checkpoints(const std::string& run_dir, int keep, int64_t best_step) {
  const fs::path ck = fs::path(run_dir) / "ckpt";
  std::error_code ec;
  if (fs::is_directory(ck, ec))
    for (const auto& e : fs::directory_iterator(ck))
      if (e.path().filename().string().find(".tmp") != std::string::npos) fs::remove_all(e.path(), ec);
  if (keep <= 0) return;
  auto dirs = step_dirs(run_dir);
  const size_t n = dirs.size();
  for (size_t i = 0; i + size_t(keep) < n; ++i)
    if (dirs[i].first != best_step) remove_step_dir(dirs[i].second);
}

}  // namespace anetrain
