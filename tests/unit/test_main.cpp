#include <gtest/gtest.h>

#include "mil/sim/compiler.h"
#if defined(ANETRAIN_HAVE_ANE_SIM) || defined(ANETRAIN_HAVE_ANE)
#include "backends/ane/runtime/runtime.h"
#endif

// Each test starts with a fresh per-process ANE compile budget, as it has under CTest (one
// process per test); running the whole binary at once would otherwise spend it across tests.
class FreshCompileBudget : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo&) override {
    anetrain::sim::Compiler::process().reset_count();
#if defined(ANETRAIN_HAVE_ANE_SIM) || defined(ANETRAIN_HAVE_ANE)
    anetrain::ane::AneRuntime::reset_process_compiles();  // the hardware runtime's own count
#endif
  }
};

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new FreshCompileBudget);
  return RUN_ALL_TESTS();
}
