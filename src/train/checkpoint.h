// Run directories and their checkpoints:
//   RUN/ckpt/step-00000100/model.anck   weights (kind "model"; meta holds the ModelConfig)
//   RUN/ckpt/step-00000100/state.anck   training state (kind "train_state": AdamW moments,
//                                       step, sampler/RNG state, best validation loss, ...)
// A checkpoint is written into step-N.tmp and renamed into place, so a directory named
// step-N is always complete; resume takes the newest one whose CRCs verify.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/sampler.h"
#include "model/model.h"
#include "train/optimizer.h"

namespace anetrain {

struct TrainState {
  int64_t step = 0;  // optimizer steps completed
  SamplerState sampler;
  uint64_t tokens_seen = 0;
  double best_val = std::numeric_limits<double>::infinity();
  int64_t best_step = -1;
  int nonfinite_consecutive = 0;
  int64_t nonfinite_total = 0;
  double loss_scale = 1.0;  // fp16 backends scale the loss; the fp32 ones keep 1
  int64_t loss_scale_clean = 0;  // clean steps since the scale last moved
  int64_t overflow_total = 0;    // steps skipped because scaled gradients overflowed
  double last_loss = 0.0;
  int world_size = 1;  // data parallel ranks the run trained with (global batch = this × batch × accum)
};

std::string step_dir_name(int64_t step);

// Writes RUN/ckpt/step-N atomically and returns its path. Refuses non-finite weights.
std::string save_checkpoint(const std::string& run_dir, const Model& m, AdamW& opt, const TrainState& st);

// Newest complete checkpoint directory in RUN/ckpt that verifies; nullopt when none does.
// Directories that fail verification are reported on stderr and skipped.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// Restores weights (and, when given, optimizer and training state) from a step directory.
void load_checkpoint(const std::string& step_dir, Model& m, AdamW* opt, TrainState* st);

// A fresh Model from a model.anck file, a step directory, or a run directory (its latest).
std::unique_ptr<Model> load_model_checkpoint(const std::string& path);
// Resolves a run dir / step dir / .anck path to the model.anck file; empty if not a checkpoint.
std::string find_model_anck(const std::string& path);

// Deletes all but the newest `keep` step directories, never `best_step`'s, and stale *.tmp dirs.
void prune_checkpoints(const std::string& run_dir, int keep, int64_t best_step);

}  // namespace anetrain
