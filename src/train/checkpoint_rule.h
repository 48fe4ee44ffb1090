// When `anetrain train` writes a checkpoint, as one decision per step so that the rule can be
// tested on a scripted loss sequence without a model (tests/unit/test_checkpoint_rule.cpp).
#pragma once
#include <cstdint>

#include "train/checkpoint.h"

namespace anetrain {

class CheckpointRule {
 public:
  CheckpointRule(int64_t ckpt_every, bool save_best, bool has_validation)
      : ckpt_every(ckpt_every), save_best(save_best), has_validation(has_validation) {}
  const int64_t ckpt_every;  // 0: no periodic checkpoints
  const bool save_best;
  const bool has_validation;

  // After step `st.step` whose training loss is `loss` (`applied`: the optimizer took the step;
  // a skipped non-finite step never counts as best). `val_improved`: this step evaluated and the
  // validation loss beat st.best_val (the session has already made it the best). `must`: the last
  // step of the run or a stop was requested, which always saves.
  //
  // Without validation data and with save_best, the rule is the seed's: at a periodic step, save
  // when the step's loss is below the loss of the last checkpoint saved by this rule (the first
  // periodic step always saves). st.best_val / st.best_step move only when that checkpoint is
  // written, so best_step always names a checkpoint on disk (the caller undoes it with
  // `unsaved` if the write did not happen). Where the seed compared the last micro-batch's loss,
  // this compares the step's mean over its micro-batches (less noisy, same meaning at accum 1).
  bool should_save(TrainState& st, bool applied, double loss, bool val_improved, bool must) {
    const bool periodic = ckpt_every > 0 && st.step % ckpt_every == 0;
    if (has_validation) return must || val_improved || (periodic && !save_best);
    if (!save_best) return must || periodic;
    if (periodic && applied && loss < st.best_val) {
      previous_best_val_ = st.best_val;
      previous_best_step_ = st.best_step;
      st.best_val = loss;
      st.best_step = st.step;
      return true;
    }
    return must;
  }

  // The checkpoint should_save asked for was not written (a folder of someone else's had that
  // step's name): the best is what it was before, so best_step still names a saved checkpoint.
  void unsaved(TrainState& st) {
    if (has_validation || !save_best || st.best_step != st.step) return;
    st.best_val = previous_best_val_;
    st.best_step = previous_best_step_;
  }

 private:
  double previous_best_val_ = 0;
  int64_t previous_best_step_ = -1;
};

}  // namespace anetrain
