#include <gtest/gtest.h>

#include "mil/sim/compiler.h"

// Each test starts with a fresh per-process ANE compile budget, as it has under CTest (one
// process per test); running the whole binary at once would otherwise spend it across tests.
class FreshCompileBudget : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo&) override { anetrain::sim::Compiler::process().reset_count(); }
};

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new FreshCompileBudget);
  return RUN_ALL_TESTS();
}
