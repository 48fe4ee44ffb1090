#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>

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

// The process's temp folder becomes a fresh folder of its own, removed when every test passed (and
// named when one failed, for a look): no test leaves files in the machine's temp folder, neither
// its own scratch files nor a rejected program the ane backends keep there for the user.
std::string private_temp_folder() {
  std::string pattern = (std::filesystem::temp_directory_path() / "anetrain-tests-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) return "";
  ::setenv("TMPDIR", pattern.c_str(), 1);
  return pattern;
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new FreshCompileBudget);
  const std::string temp = private_temp_folder();
  const int rc = RUN_ALL_TESTS();
  std::error_code ec;
  if (rc == 0 && !temp.empty()) std::filesystem::remove_all(temp, ec);
  else if (!temp.empty()) std::fprintf(stderr, "the tests' temporary files are kept in %s\n", temp.c_str());
  return rc;
}
