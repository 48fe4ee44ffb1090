// The ranges every command, the C API and --resume share (core/option_check.h, train_option_rules).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/error.h"
#include "core/option_check.h"
#include "train/trainer.h"

namespace anetrain {
namespace {

TEST(OptionCheck, NanAndInfinityAreOutsideEveryRange) {
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  for (const Range& r : {Range{}, Range::at_least(0), Range::above(0), Range::between(0, 1), Range{0, 1, false, true}}) {
    EXPECT_NE(range_problem(nan, r), "") << r.describe();
    EXPECT_NE(range_problem(inf, r), "") << r.describe();
    EXPECT_NE(range_problem(-inf, r), "") << r.describe();
  }
  EXPECT_EQ(range_problem(0.5, Range{}), "");
}

TEST(OptionCheck, OpenAndClosedBoundsAndWholeNumbers) {
  const Range beta{0, 1, false, true};  // [0, 1)
  EXPECT_EQ(range_problem(0, beta), "");
  EXPECT_EQ(range_problem(0.999, beta), "");
  EXPECT_NE(range_problem(1, beta), "");
  EXPECT_NE(range_problem(-1e-9, beta), "");
  EXPECT_NE(range_problem(0, Range::above(0)), "");
  EXPECT_EQ(range_problem(1e-12, Range::above(0)), "");
  const Range count = Range::between(0, 10).whole();
  EXPECT_EQ(range_problem(10, count), "");
  EXPECT_NE(range_problem(2.5, count), "");
  EXPECT_NE(range_problem(11, count), "");
  EXPECT_EQ(range_problem(2, beta), "must be in [0, 1), got 2");
}

TEST(OptionCheck, TextIsReadAsTheCliReadsIt) {
  EXPECT_NE(text_range_problem("nan", Range::above(0)), "");
  EXPECT_NE(text_range_problem("1e-3x", Range::above(0)), "");
  EXPECT_NE(text_range_problem("", Range::above(0)), "");
  EXPECT_EQ(text_range_problem("1e-3", Range::above(0)), "");
}

TEST(OptionCheck, ThreadsAreBoundedByTheCoresUnlessForced) {
  unsetenv("ANETRAIN_FORCE_THREADS");
  const int ceiling = max_threads();
  EXPECT_GE(ceiling, 4);
  EXPECT_NO_THROW(check_threads("--threads", 0));
  EXPECT_NO_THROW(check_threads("--threads", ceiling));
  EXPECT_THROW(check_threads("--threads", ceiling + 1), Error);
  EXPECT_THROW(check_threads("--threads", -1), Error);
  EXPECT_THROW(check_threads("--threads", 100000), Error);
  setenv("ANETRAIN_FORCE_THREADS", "1", 1);
  EXPECT_GE(max_threads(), ceiling);
  EXPECT_LE(max_threads(), 1024);
  EXPECT_THROW(check_threads("--threads", 100000), Error);  // never past the cap, even forced
  unsetenv("ANETRAIN_FORCE_THREADS");
}

TEST(OptionCheck, TrainOptionsNameTheOffendingOption) {
  auto message = [](TrainOptions o, bool cli) {
    try {
      o.validate(cli);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  TrainOptions ok;
  ok.opt.min_lr = 0;
  EXPECT_EQ(message(ok, true), "");
  TrainOptions o = ok;
  o.opt.lr = std::nan("");
  EXPECT_NE(message(o, true).find("--lr"), std::string::npos);
  EXPECT_NE(message(o, false).find("\"lr\""), std::string::npos);
  o = ok;
  o.opt.beta2 = 2;
  EXPECT_NE(message(o, true).find("--beta2"), std::string::npos);
  o = ok;
  o.eval_batches = -1;
  EXPECT_NE(message(o, true).find("--eval-batches"), std::string::npos);
  o = ok;
  o.stop_at = -1;
  EXPECT_NE(message(o, true).find("--stop-at"), std::string::npos);
  o = ok;
  o.threads = 100000;
  EXPECT_NE(message(o, true).find("--threads"), std::string::npos);
}

TEST(OptionCheck, EveryRuleNamesAKeyOfRunJson) {
  const nlohmann::json j = TrainOptions().to_json();
  for (const TrainOptionRule& r : train_option_rules()) EXPECT_TRUE(j.contains(r.key)) << r.key;
}

}  // namespace
}  // namespace anetrain
