// The C API's training session (include/anetrain.h): a TrainSession behind a registered handle.
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "anetrain.h"
#include "capi/guard.h"
#include "core/error.h"
#include "train/checkpoint.h"
#include "train/run_dir.h"
#include "train/session.h"
#include "train/trainer.h"

struct anetrain_trainer {
  std::unique_ptr<anetrain::TrainSession> session;
  std::string last_checkpoint;
};

namespace {

using namespace anetrain;
using namespace anetrain::capi;

Registry<anetrain_trainer> g_trainers;

// The caller's keys over anetrain train's defaults; unknown keys and wrong types are refused.
TrainOptions options_from(const std::string& text) {
  const nlohmann::json given = nlohmann::json::parse(text, nullptr, false);
  if (given.is_discarded() || !given.is_object()) refuse(ANETRAIN_ERR_ARGUMENT, "options_json is not a JSON object");
  nlohmann::json j = TrainOptions().to_json();
  j["precision"] = "fp32";
  j["log_every"] = 0;
  j["min_lr"] = -1.0;  // as the CLI: 0.1 × lr unless given
  for (auto it = given.begin(); it != given.end(); ++it) {
    if (!j.contains(it.key())) refuse(ANETRAIN_ERR_ARGUMENT, "unknown option \"" + it.key() + "\"");
    const nlohmann::json& def = j[it.key()];
    const nlohmann::json& v = it.value();
    // Integers must be integers in range: a conversion of 1e12 to int is undefined behaviour.
    if (def.is_number_integer()) {
      if (!v.is_number_integer()) refuse(ANETRAIN_ERR_ARGUMENT, "option \"" + it.key() + "\" must be an integer");
      const bool wide = it.key() == "steps" || it.key() == "stop_at" || it.key() == "seed";
      if (!wide && (v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX))
        refuse(ANETRAIN_ERR_ARGUMENT, "option \"" + it.key() + "\" is out of range");
    }
    j[it.key()] = v;
  }
  for (const char* key : {"model", "out"})
    if (!given.contains(key)) refuse(ANETRAIN_ERR_ARGUMENT, std::string("options_json needs \"") + key + "\"");
  if (!given.contains("data")) refuse(ANETRAIN_ERR_ARGUMENT, "options_json needs \"data\" (token shard paths)");
  TrainOptions o;
  try {
    o = TrainOptions::from_json(j);
  } catch (const nlohmann::json::exception& e) {
    refuse(ANETRAIN_ERR_ARGUMENT, std::string("an option has the wrong type: ") + e.what());
  }
  if (o.opt.min_lr < 0 && o.opt.min_lr != -1.0) refuse(ANETRAIN_ERR_ARGUMENT, "option \"min_lr\" must be ≥ 0");
  if (o.opt.min_lr < 0) o.opt.min_lr = 0.1 * o.opt.lr;
  try {
    o.validate(/*cli_names=*/false);  // the same ranges as `anetrain train`'s flags
  } catch (const Error& e) {
    refuse(ANETRAIN_ERR_ARGUMENT, e.what());
  }
  return o;
}

}  // namespace

extern "C" {

anetrain_status anetrain_trainer_create(const char* options_json, anetrain_trainer** out) {
  return guarded("anetrain_trainer_create", [&] {
    need(out, "out");
    *out = nullptr;
    need(options_json, "options_json");
    TrainOptions o = options_from(options_json);
    auto t = std::make_unique<anetrain_trainer>();
    t->session = std::make_unique<TrainSession>(o, "", /*verbose=*/false);
    *out = g_trainers.add(std::move(t));
  });
}

anetrain_status anetrain_trainer_resume(const char* run_dir, anetrain_trainer** out) {
  return guarded("anetrain_trainer_resume", [&] {
    need(out, "out");
    *out = nullptr;
    need(run_dir, "run_dir");
    const std::string path = (std::filesystem::path(run_dir) / "run.json").string();
    TrainOptions o;
    try {
      o = TrainOptions::from_json(RunDir::read_settings(run_dir));
    } catch (const nlohmann::json::exception& e) {
      refuse(ANETRAIN_ERR_INPUT, path + ": unreadable run settings: " + e.what());
    } catch (const Error& e) {
      refuse(ANETRAIN_ERR_INPUT, e.what());
    }
    o.out = run_dir;
    o.log_every = 0;
    auto t = std::make_unique<anetrain_trainer>();
    t->session = std::make_unique<TrainSession>(o, run_dir, /*verbose=*/false);
    *out = g_trainers.add(std::move(t));
  });
}

void anetrain_trainer_free(anetrain_trainer* trainer) {
  auto t = g_trainers.take(trainer);
  if (!t) return;
  try {
    TrainSession& s = *t->session;
    s.finish(s.state().step < s.options().steps, t->last_checkpoint);
  } catch (...) {  // nothing may escape; the telemetry line is all that is lost
  }
  // A call still running on another thread keeps its own reference; the session ends with it.
}

anetrain_status anetrain_trainer_step(anetrain_trainer* trainer, double* loss, int64_t* step) {
  return guarded("anetrain_trainer_step", [&] {
    const auto held = g_trainers.get(trainer);
    TrainSession& s = *held->session;
    if (s.state().step >= s.options().steps)
      refuse(ANETRAIN_ERR_ARGUMENT, "the run has done its " + std::to_string(s.options().steps) +
                                        " steps (resume it with a larger \"steps\" in run.json to go on)");
    const StepResult r = s.step();
    if (loss) *loss = r.loss;
    if (step) *step = r.step;
    // The step happened, but the run can no longer be recorded (a full disk): the caller must know.
    if (!s.telemetry_error().empty())
      refuse(ANETRAIN_ERR_INPUT, "step " + std::to_string(r.step) + " done, but its telemetry could not be written: " +
                                     s.telemetry_error() + " (checkpoint and stop)");
  });
}

anetrain_status anetrain_trainer_evaluate(anetrain_trainer* trainer, double* val_loss) {
  return guarded("anetrain_trainer_evaluate", [&] {
    const auto held = g_trainers.get(trainer);
    TrainSession& s = *held->session;
    if (!s.has_validation()) refuse(ANETRAIN_ERR_ARGUMENT, "the run has no validation data (val_data or val_frac)");
    const EvalReport r = s.evaluate();
    if (val_loss) *val_loss = r.val_loss;
  });
}

anetrain_status anetrain_trainer_checkpoint(anetrain_trainer* trainer, char* path, size_t* len) {
  return guarded("anetrain_trainer_checkpoint", [&] {
    const auto t = g_trainers.get(trainer);
    if (path && !len) refuse(ANETRAIN_ERR_ARGUMENT, "path given without its capacity (len)");
    const std::string written = t->session->checkpoint();
    if (written.empty())
      refuse(ANETRAIN_ERR_INPUT, "step " + std::to_string(t->session->state().step) +
                                     ": its checkpoint folder's name is taken by a folder that is not this run's");
    t->last_checkpoint = written;
    if (!len) return;
    const size_t capacity = *len;
    *len = t->last_checkpoint.size();
    if (!path) return;
    if (capacity < t->last_checkpoint.size() + 1)
      refuse(ANETRAIN_ERR_BUFFER, "path holds " + std::to_string(capacity) + " bytes; the checkpoint " +
                                      t->last_checkpoint + " was written");
    std::memcpy(path, t->last_checkpoint.c_str(), t->last_checkpoint.size() + 1);
  });
}

anetrain_status anetrain_trainer_progress(const anetrain_trainer* trainer, int64_t* step, int64_t* total) {
  return guarded("anetrain_trainer_progress", [&] {
    const auto held = g_trainers.get(trainer);
    TrainSession& s = *held->session;
    if (step) *step = s.state().step;
    if (total) *total = s.options().steps;
  });
}

}  // extern "C"
