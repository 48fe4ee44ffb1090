// `train --save-best` and the periodic checkpoints, decided step by step on scripted losses.
#include <gtest/gtest.h>

#include <vector>

#include "train/checkpoint_rule.h"

namespace anetrain {
namespace {

struct Scripted {
  double loss;
  bool applied = true;
};

// Runs the rule over `losses` (step 1, 2, ...); returns the steps it saved, checking after each
// save that best_step names a saved step.
std::vector<int64_t> saved_steps(CheckpointRule rule, const std::vector<Scripted>& losses, TrainState& st,
                                 int64_t refuse_step = -1) {
  std::vector<int64_t> saved;
  for (size_t i = 0; i < losses.size(); ++i) {
    st.step = int64_t(i) + 1;
    const bool must = i + 1 == losses.size();
    if (!rule.should_save(st, losses[i].applied, losses[i].loss, /*val_improved=*/false, must)) continue;
    if (st.step == refuse_step) {
      rule.unsaved(st);  // the write did not happen
    } else {
      saved.push_back(st.step);
    }
    if (st.best_step >= 0) {
      bool found = false;
      for (int64_t s : saved) found = found || s == st.best_step;
      EXPECT_TRUE(found) << "best_step " << st.best_step << " names no saved checkpoint at step " << st.step;
    }
  }
  return saved;
}

TEST(CheckpointRule, SaveBestSavesEachPeriodicStepThatBeatsTheLastSave) {
  // Periodic every 2 steps. Step 2 (first periodic) saves at 5.0; step 3 dips to 1.0 but is not
  // periodic, and must not become "best" (the old rule did, then skipped step 4 although 4.0 beats
  // the last save, and reported best_step 3, which had no checkpoint). Step 4 saves (4.0 < 5.0);
  // step 6 (4.5) does not; step 8 (3.0) does; step 10 is the last step and always saves.
  const std::vector<Scripted> losses = {{6.0}, {5.0}, {1.0}, {4.0}, {0.5}, {4.5}, {9.0}, {3.0}, {2.0}, {8.0}};
  TrainState st;
  const auto saved = saved_steps({2, /*save_best=*/true, /*has_validation=*/false}, losses, st);
  EXPECT_EQ(saved, (std::vector<int64_t>{2, 4, 8, 10}));
  EXPECT_EQ(st.best_step, 8);
  EXPECT_DOUBLE_EQ(st.best_val, 3.0);
}

TEST(CheckpointRule, SkippedStepNeverBecomesBest) {
  const std::vector<Scripted> losses = {{5.0}, {1.0, /*applied=*/false}, {7.0}, {4.0}};
  TrainState st;
  const auto saved = saved_steps({2, true, false}, losses, st);
  EXPECT_EQ(saved, (std::vector<int64_t>{4}));  // step 2 was skipped; step 4 saves as the first best
  EXPECT_EQ(st.best_step, 4);
}

TEST(CheckpointRule, ResumedRunComparesWithTheBestItRestored) {
  TrainState st;
  st.best_val = 2.0;  // from the checkpoint it resumed
  st.best_step = 100;
  CheckpointRule rule{100, true, false};
  st.step = 200;
  EXPECT_FALSE(rule.should_save(st, true, 2.5, false, false));
  EXPECT_EQ(st.best_step, 100);
  st.step = 300;
  EXPECT_TRUE(rule.should_save(st, true, 1.5, false, false));
  EXPECT_EQ(st.best_step, 300);
}

TEST(CheckpointRule, AnUnwrittenCheckpointLeavesTheBestWhereItWas) {
  const std::vector<Scripted> losses = {{5.0}, {4.0}, {3.0}, {2.0}, {2.5}};
  TrainState st;
  // Step 4's folder belonged to someone else, so nothing was written there.
  const auto saved = saved_steps({2, true, false}, losses, st, /*refuse_step=*/4);
  EXPECT_EQ(saved, (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(st.best_step, 2);
  EXPECT_DOUBLE_EQ(st.best_val, 4.0);
}

TEST(CheckpointRule, WithoutSaveBestEveryPeriodicStepAndTheLastSave) {
  const std::vector<Scripted> losses = {{5.0}, {6.0}, {7.0}, {8.0}, {9.0}};
  TrainState st;
  EXPECT_EQ(saved_steps({2, false, false}, losses, st), (std::vector<int64_t>{2, 4, 5}));
  EXPECT_EQ(st.best_step, -1);  // training loss is not tracked as best without --save-best
}

TEST(CheckpointRule, WithValidationImprovementsSaveAndSaveBestDropsThePlainPeriodicOnes) {
  CheckpointRule plain{2, false, true}, best{2, true, true};
  TrainState st;
  st.step = 2;
  EXPECT_TRUE(plain.should_save(st, true, 1.0, false, false));
  EXPECT_FALSE(best.should_save(st, true, 1.0, false, false));
  EXPECT_TRUE(best.should_save(st, true, 1.0, /*val_improved=*/true, false));
  st.step = 3;
  EXPECT_TRUE(best.should_save(st, true, 1.0, true, false));  // an improving evaluation always saves
  EXPECT_TRUE(best.should_save(st, true, 1.0, false, /*must=*/true));
}

}  // namespace
}  // namespace anetrain
