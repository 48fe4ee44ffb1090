#include "train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/warn.h"
#include "formats/anck.h"
#include "formats/peft.h"
#include "train/run_dir.h"

namespace anetrain {

namespace fs = std::filesystem;

namespace {

// The files a checkpoint folder holds when anetrain wrote it: the two .anck files, and the temp
// files AtomicFile writes them through (".model.anck.tmp.<pid>") when a writer was killed.
bool written_by_checkpoint(const std::string& name) {
  for (const char* f : {"model.anck", "state.anck", "adapter_config.json", "adapter_model.safetensors"}) {
    if (name == f) return true;
    const std::string tmp = std::string(".") + f + ".tmp.";
    if (name.rfind(tmp, 0) == 0 && name.size() > tmp.size() &&
        name.find_first_not_of("0123456789", tmp.size()) == std::string::npos)
      return true;
  }
  return false;
}

// Deletes what a checkpoint writer puts in `dir`, then the folder if that left it empty. A
// folder holding anything else is kept, with a warning: it may be a user's.
void remove_checkpoint_files(const fs::path& dir) {
  std::error_code ec;
  // Only a real folder: a user's file or symlink that happens to carry a checkpoint's name is
  // not ours to empty (a symlink would lead the iteration into someone else's folder).
  if (!fs::is_directory(fs::symlink_status(dir, ec))) {
    warn("left " + dir.string() + " in place: it is not a folder anetrain wrote");
    return;
  }
  std::vector<fs::path> own;
  bool foreign = false;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec) && !e.is_symlink(ec) && written_by_checkpoint(e.path().filename().string()))
      own.push_back(e.path());
    else
      foreign = true;
  }
  for (const auto& f : own) fs::remove(f, ec);
  if (foreign || !fs::remove(dir, ec))
    warn("left " + dir.string() + " in place: it holds files anetrain did not write");
}

// Deleting a checkpoint is not atomic: it leaves the step-N namespace by a rename first, so a
// crash mid-delete can only leave a step-N.tmp.del folder, never a half-empty step-N.
void remove_step_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  const fs::path doomed = dir.string() + ".tmp.del";
  if (fs::exists(doomed, ec)) remove_checkpoint_files(doomed);
  fs::rename(dir, doomed, ec);
  if (ec) fail(dir.string() + ": cannot remove the old checkpoint: " + ec.message());
  fsync_dir(dir.parent_path().string());
  remove_checkpoint_files(doomed);
}

nlohmann::json sampler_json(const SamplerState& s) {
  return {{"rng", s.rng}, {"epoch", s.epoch}, {"cursor", s.cursor}};
}

}  // namespace

std::string save_checkpoint(RunDir& run, const Model& m, AdamW& opt, const TrainState& st) {
  for (float v : m.params)
    if (!std::isfinite(v)) fail("refusing to checkpoint non-finite weights at step " + std::to_string(st.step));
  const fs::path ck = fs::path(run.path()) / "ckpt";
  std::error_code ec;
  fs::create_directories(ck, ec);
  if (ec) fail(ck.string() + ": cannot create the checkpoint folder: " + ec.message());
  const fs::path final_dir = ck / step_dir_name(st.step);
  const fs::path tmp = ck / (step_dir_name(st.step) + ".tmp");
  // Replaced only when it is this run's: a same-step checkpoint from an earlier, interrupted life.
  if (fs::exists(final_dir, ec) && !run.owns_checkpoint(st.step) && !adoptable_checkpoint(run.path(), st.step, run.run_id())) {
    warn(final_dir.string() + " is not a checkpoint of this run: left as it is, and step " + std::to_string(st.step) +
         " not saved");
    return "";
  }
  if (fs::exists(fs::symlink_status(tmp, ec))) remove_checkpoint_files(tmp);
  if (fs::exists(fs::symlink_status(tmp, ec))) {
    warn(tmp.string() + " is in the way and is not anetrain's: step " + std::to_string(st.step) + " not saved");
    return "";
  }
  fs::create_directories(tmp, ec);
  if (ec) fail(tmp.string() + ": cannot create: " + ec.message());

  std::vector<AnckTensorIn> weights, state;
  for (const auto& s : m.table.specs()) {
    // A held base is not written: the checkpoint names it (held_base_json) and resume reloads it.
    if (!s.held) weights.push_back({s.name, s.shape, m.params.data() + s.offset});
    if (!s.trainable) continue;  // a frozen tensor has no moments
    state.push_back({"adam_m/" + s.name, s.shape, opt.m1().data() + s.grad_offset});
    state.push_back({"adam_v/" + s.name, s.shape, opt.m2().data() + s.grad_offset});
  }
  nlohmann::json meta = {{"step", st.step},
                         {"run_id", run.run_id()},
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
  try {
    nlohmann::json model_meta = {{"config", config_to_json(m.cfg)}, {"step", st.step}};
    if (m.held) model_meta["held_base"] = held_base_json(m);
    write_anck((tmp / "model.anck").string(), "model", model_meta, weights);
    write_anck((tmp / "state.anck").string(), "train_state", meta, state);
    // An adapter run's checkpoint is also a PEFT adapter folder: `generate BASE --lora STEP_DIR`,
    // `merge`, and PEFT itself read it as it is.
    if (m.cfg.lora.rank > 0) save_peft_adapter(m, tmp.string(), run.settings().value("model", std::string()));
    fsync_dir(tmp.string());
  } catch (const Error&) {
    remove_checkpoint_files(tmp);  // a full disk gets its space back at once, not at the next start
    throw;
  }
  remove_step_dir(final_dir);
  fs::rename(tmp, final_dir, ec);
  if (ec) fail(final_dir.string() + ": cannot rename the new checkpoint into place: " + ec.message());
  fsync_dir(ck.string());
  run.add_checkpoint(st.step);
  return final_dir.string();
}

bool adoptable_checkpoint(const std::string& run_dir, int64_t step, const std::string& run_id, bool any_run) {
  const fs::path dir = fs::path(run_dir) / "ckpt" / step_dir_name(step);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory(ec) || !written_by_checkpoint(e.path().filename().string())) return false;
  if (ec || (run_id.empty() && !any_run)) return false;
  try {
    AnckReader r((dir / "state.anck").string());
    const auto& meta = r.meta();
    return meta.is_object() && (any_run || meta.value("run_id", std::string()) == run_id) && meta.contains("step") &&
           meta["step"].is_number_integer() && meta["step"].get<int64_t>() == step;
  } catch (const std::exception&) {
    return false;
  }
}

void load_checkpoint(const std::string& step_dir, Model& m, AdamW* opt, TrainState* st) {
  read_checkpoint_weights(step_dir, m);
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
        if (!s.trainable) continue;
        r.read("adam_m/" + s.name, s.shape, opt->m1().data() + s.grad_offset);
        r.read("adam_v/" + s.name, s.shape, opt->m2().data() + s.grad_offset);
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

void prune_checkpoints(RunDir& run, int keep, int64_t best_step) {
  if (keep <= 0) return;
  const std::vector<int64_t> steps = run.checkpoints();
  for (size_t i = 0; i + size_t(keep) < steps.size(); ++i) {
    if (steps[i] == best_step) continue;
    remove_step_dir(fs::path(run.path()) / "ckpt" / step_dir_name(steps[i]));
    run.drop_checkpoint(steps[i]);
  }
}

void sweep_checkpoint_temporaries(const RunDir& run) {
  const fs::path ck = fs::path(run.path()) / "ckpt";
  std::error_code ec;
  if (!fs::is_directory(ck, ec)) return;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(ck, ec)) {
    std::string name = e.path().filename().string();
    for (const char* suffix : {".tmp.del", ".tmp"})
      if (name.size() > std::strlen(suffix) && name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0) {
        if (e.is_directory(ec) && parse_step_dir_name(name.substr(0, name.size() - std::strlen(suffix)))) stale.push_back(e.path());
        break;
      }
  }
  for (const auto& dir : stale) remove_checkpoint_files(dir);
}

}  // namespace anetrain
