// Writing a run's checkpoints, and reading back its training state:
//   RUN/ckpt/step-00000100/model.anck   weights (kind "model"; meta holds the ModelConfig)
//   RUN/ckpt/step-00000100/state.anck   training state (kind "train_state": AdamW moments of the
//                                       trainable tensors, step, sampler/RNG state, best
//                                       validation loss, ...)
// A checkpoint is written into step-N.tmp and renamed into place, so a directory named step-N is
// always complete; resume takes the newest one whose CRCs verify. Which checkpoints are the run's
// own (and so may be replaced or pruned) is the run folder's list (run_dir.h). Finding a run's
// checkpoints and reading its model are formats/checkpoint_model.h's.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/sampler.h"
#include "formats/checkpoint_model.h"
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

class RunDir;

// Whether RUN/ckpt/step-N is exactly what this run's checkpoint writer leaves: only its files,
// its state written under `run_id` at that step (a checkpoint renamed into place just before a
// crash cost the run.json update). A user's copy or a folder with anything else is not.
// `any_run`: a run from before run ids (its run.json has no marker): any id, but still only the
// writer's files at that step.
bool adoptable_checkpoint(const std::string& run_dir, int64_t step, const std::string& run_id, bool any_run = false);

// Writes RUN/ckpt/step-N atomically, lists it in run.json and returns its path. Refuses
// non-finite weights. Where a step-N folder exists that is not this run's, it is left alone,
// with a warning, and nothing is saved: returns "".
std::string save_checkpoint(RunDir& run, const Model& m, AdamW& opt, const TrainState& st);

// Restores weights (and, when given, optimizer and training state) from a step directory. The
// moments are read for m's trainable tensors.
void load_checkpoint(const std::string& step_dir, Model& m, AdamW* opt, TrainState* st);

// Deletes all but the newest `keep` of the run's listed checkpoints, never `best_step`'s.
void prune_checkpoints(RunDir& run, int keep, int64_t best_step);
// Removes the step-N.tmp and step-N.tmp.del folders a killed predecessor left: only those exact
// names, only the files anetrain writes in them; anything else stays, with a warning.
void sweep_checkpoint_temporaries(const RunDir& run);

}  // namespace anetrain
