// The learning-rate schedule counted in micro-steps (AdamWConfig::lr_micro_steps), as the seed's
// trainer counted it (seed-system §3.1 step 6), against that formula written out here.
#include <gtest/gtest.h>

#include <cmath>

#include "train/optimizer.h"

namespace anetrain {
namespace {

// §3.1: at micro-step s, lr = max·(s+1)/warmup in the warmup, then min + ½(1+cos(π(s−w)/(T−w)))(max−min).
double seed_rate(double max_lr, int warmup, int total_micro, int s) {
  if (s < warmup) return max_lr * (s + 1) / warmup;
  const double min_lr = 0.1 * max_lr;
  return min_lr + 0.5 * (1 + std::cos(M_PI * double(s - warmup) / double(total_micro - warmup))) * (max_lr - min_lr);
}

TEST(SeedSchedule, UpdateTakesTheRateOfItsLastMicroStep) {
  AdamWConfig c;
  c.lr = 3e-4;
  c.min_lr = 3e-5;
  c.warmup = 100;
  c.total_steps = 1000;  // updates: 10,000 micro-steps
  c.lr_micro_steps = 10;
  for (int update : {0, 1, 8, 9, 10, 11, 500, 998, 999}) {
    const int s = update * 10 + 9;  // the seed updates when (s + 1) % 10 == 0
    EXPECT_NEAR(lr_at(c, update), seed_rate(3e-4, 100, 10000, s), 1e-15) << "update " << update;
  }
}

TEST(SeedSchedule, OneMicroStepPerUpdateIsTheUsualSchedule) {
  AdamWConfig c;
  c.lr = 1e-3;
  c.min_lr = 1e-4;
  c.warmup = 5;
  c.total_steps = 20;
  for (int step = 0; step < 25; ++step) {
    const double expect = step < 5 ? 1e-3 * (step + 1) / 5
                                   : 1e-4 + 0.5 * (1 + std::cos(M_PI * std::min(1.0, (step - 5) / 15.0))) * 9e-4;
    EXPECT_DOUBLE_EQ(lr_at(c, step), expect) << "step " << step;
  }
}

}  // namespace
}  // namespace anetrain
