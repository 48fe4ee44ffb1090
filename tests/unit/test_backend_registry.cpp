// The backend table (backends/registry.cpp): it lists what this build made, refuses the rest with
// a reason, and every backend it makes describes itself coherently through caps().
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "contract/registry.h"
#include "gen/weight_form.h"
#include "op_test_util.h"

namespace anetrain {
namespace {

using test::error_of;

TEST(BackendRegistry, ListsWhatThisBuildMade) {
  std::vector<std::string> built = {"cpu", "ref"};
#if defined(ANETRAIN_HAVE_ANE_SIM)
  built.push_back("ane-sim");
#endif
  EXPECT_EQ(backend_names(), built);
  std::set<std::string_view> names;
  for (const BackendEntry& e : backend_table()) {
    EXPECT_TRUE(names.insert(e.name).second) << "twice in the table: " << e.name;
    EXPECT_EQ(find_backend(e.name), &e);
    EXPECT_NE(e.make == nullptr, e.absent.empty()) << e.name << ": a backend is either made or says why not";
  }
  EXPECT_EQ(find_backend("gpu"), nullptr);
}

TEST(BackendRegistry, RefusesByName) {
  std::string available;
  for (const auto& n : backend_names()) available += (available.empty() ? "" : ", ") + n;
  EXPECT_EQ(error_of([] { make_backend("gpu"); }), "unknown backend 'gpu' (available: " + available + ")");
  for (const BackendEntry& e : backend_table())
    if (!e.make) {
      const std::string msg = error_of([&] { make_backend(std::string(e.name)); });
      EXPECT_EQ(msg, "backend '" + std::string(e.name) + "' " + std::string(e.absent));
      EXPECT_NE(msg.find("not built into this binary"), std::string::npos) << msg;
    }
}

// What every backend the table makes says about itself, in both precisions it may be asked for.
TEST(BackendRegistry, EveryBuiltBackendReportsCoherentCaps) {
  int made = 0;
  for (const BackendEntry& e : backend_table()) {
    if (!e.make) continue;
    const std::string name(e.name);
    SCOPED_TRACE(name);
    auto be = make_backend(name);
    ++made;
    EXPECT_EQ(be->name(), name);
    const Capabilities c = be->caps();
    // Tolerances: positive, within the loosest bound any backend is held to (fp16, 2e-2), and a
    // stage (several ops chained) never tighter than one linear op.
    EXPECT_GT(c.numerics.linear_rtol, 0);
    EXPECT_LE(c.numerics.stage_rtol, 2e-2);
    EXPECT_GE(c.numerics.stage_rtol, c.numerics.linear_rtol);
    if (c.numerics.fp16) {
      EXPECT_GE(c.numerics.stage_rtol, 1e-3) << "fp16's unit roundoff alone is 4.9e-4";
    }
    // Compiled programs are fused stages, so such a backend decodes the fp32 model through them.
    if (c.programs) {
      EXPECT_TRUE(c.fused_stages);
      EXPECT_TRUE(c.programs->take_fallbacks().empty()) << "nothing ran, nothing fell back";
    }
    EXPECT_EQ(decodes_packed(*be), !c.fused_stages);
    if (c.profiler) {
      EXPECT_TRUE(c.profiler->take_kernel_timings().empty()) << "nothing ran yet";
    }
    // A bf16 weight copy serves bf16 products only.
    if (c.weight_mirror) {
      EXPECT_EQ(c.precision, Precision::bf16);
    }
    if (c.precision == Precision::bf16) {
      EXPECT_GT(c.numerics.linear_rtol, 1e-4) << "bf16 rounds its inputs";
    }
    if (!e.users_ask.empty()) {
      EXPECT_FALSE(e.listed) << "a tests' name is not listed";
    }

    if (e.offers_bf16) {
      EXPECT_EQ(c.precision, Precision::fp32) << "made without options";
      const Capabilities b = make_backend(name, Precision::bf16)->caps();
      EXPECT_EQ(b.precision, Precision::bf16);
      EXPECT_GT(b.numerics.linear_rtol, c.numerics.linear_rtol);
    } else {
      EXPECT_EQ(preferred_precision(name), Precision::fp32);
      EXPECT_NE(error_of([&] { make_backend(name, Precision::bf16); }).find("--precision bf16"), std::string::npos);
    }
  }
  EXPECT_GE(made, 3);  // cpu, cpu-bf16, ref at least
}

// The contract tests (ops, stages, classifier, decode) run every backend of the table but ref.
TEST(BackendRegistry, ContractTestsCoverTheTable) {
  const std::vector<std::string> tested = test::tested_backends();
  const std::set<std::string> set(tested.begin(), tested.end());
  for (const auto& n : backend_names()) {
    if (n != "ref") {
      EXPECT_TRUE(set.count(n)) << n;
    }
  }
  EXPECT_TRUE(set.count("cpu-bf16"));
  EXPECT_FALSE(set.count("ref"));
}

}  // namespace
}  // namespace anetrain
