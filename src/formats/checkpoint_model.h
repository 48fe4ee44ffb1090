// Reading the model out of anetrain's own checkpoints, as every MODEL argument may name one:
//   RUN/run.json                          the run's settings; "format": "anetrain-run" marks it
//                                         as anetrain's, "checkpoints": [steps] lists its own
//   RUN/ckpt/step-00000100/model.anck     the weights (kind "model"; meta.config: ModelConfig)
//   RUN/ckpt/step-00000100/state.anck     the training state, which only train/ reads and writes
// train/checkpoint.h writes these folders and keeps the run's list; this file only reads.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model.h"

namespace anetrain {

// "anetrain-run": the value of run.json's "format" key.
extern const char* const kRunFormat;

// RUN/run.json as a JSON object; Error when it is missing or is not one.
nlohmann::json read_run_json(const std::string& run_dir);
// Whether a run.json carries anetrain's marker.
bool marked_run_json(const nlohmann::json& j);
// The checkpoints a run folder lists, oldest first; nullopt when the folder has no marked
// run.json (then callers scan the folder instead, for runs from before the list).
std::optional<std::vector<int64_t>> listed_checkpoints(const std::string& run_dir);

std::string step_dir_name(int64_t step);
// The step of a name in exactly step_dir_name's form ("step-00000100"), else nullopt.
std::optional<int64_t> parse_step_dir_name(const std::string& name);
// Steps of the RUN/ckpt/step-N folders holding both checkpoint files, oldest first.
std::vector<int64_t> checkpoints_on_disk(const std::string& run_dir);

// Newest complete checkpoint directory of the run that verifies; nullopt when none does: the
// ones run.json lists, or (a run from before the list) the step-N folders on disk.
// Directories that fail verification are reported as warnings and skipped.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);
// The newest of these steps' checkpoints in run_dir that verifies.
std::optional<std::string> latest_checkpoint(const std::string& run_dir, const std::vector<int64_t>& steps);

// Resolves a run dir / step dir / .anck path to the model.anck file; empty if not a checkpoint.
std::string find_model_anck(const std::string& path);
// A fresh Model from a model.anck file, a step directory, or a run directory (its latest). The
// checkpoint of a run whose base is held (train --base-dtype) names its base instead of storing
// it (meta "held_base": the MODEL, seed, format and fingerprint): the base is loaded again the same
// way and checked against the fingerprint. `keep_held`: the base stays held (resuming the run);
// otherwise the model is fp32 with exactly the held values (generate, merge, export).
std::unique_ptr<Model> load_model_checkpoint(const std::string& path, bool keep_held = false);
// The "held_base" record a held model's checkpoint carries (null for an fp32 base).
nlohmann::json held_base_json(const Model& m);
// Overwrites m's weights with those of STEP_DIR/model.anck (shapes checked; a held base is not
// in it and stays), and touches m.
void read_checkpoint_weights(const std::string& step_dir, Model& m);

}  // namespace anetrain
