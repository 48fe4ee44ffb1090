// The efficiency report's arithmetic (telemetry/efficiency.h) on totals whose answers are known
// by hand.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "telemetry/efficiency.h"
#include "telemetry/metrics.h"
#include "telemetry/tui_log.h"

namespace anetrain {
namespace {

// 10 steps of 100 ms in a 2000 ms run: 300 ms on the accelerator, 100 staging, 50 of the 200 ms
// of compiling inside the steps, so the CPU's rest is 1000 − 300 − 100 − 50 = 550 and the other
// 2000 − (300 + 100 + 200 + 550) = 850.
EfficiencyTotals accelerator_run() {
  EfficiencyTotals t;
  t.wall_ms = 2000;
  t.steps = 10;
  t.step_ms = 1000;
  t.compute_ms = 300;
  t.staging_ms = 100;
  t.compile_ms = 200;
  t.compile_in_steps_ms = 50;
  t.compiles = 8;
  t.accelerator_flops = 6e12;  // as run: padded, so more than the 5e12 of the model's count they stand for
  t.accelerator_model_flops = 5e12;
  t.model_flops = 8e12;
  t.peak_gflops = 19000;
  t.peak_is_accelerator = true;
  t.peak_source = "Apple M4";
  return t;
}

TEST(Efficiency, SharesOfWallTime) {
  const EfficiencyReport r = efficiency_report(accelerator_run());
  EXPECT_DOUBLE_EQ(r.compute, 300.0 / 2000);
  EXPECT_DOUBLE_EQ(r.io, 100.0 / 2000);
  EXPECT_DOUBLE_EQ(r.compile, 200.0 / 2000);
  EXPECT_DOUBLE_EQ(r.cpu, 550.0 / 2000);
  EXPECT_DOUBLE_EQ(r.other, 850.0 / 2000);
  EXPECT_NEAR(r.compute + r.io + r.compile + r.cpu + r.other, 1.0, 1e-12);
}

TEST(Efficiency, FlopsRateUtilisationAndAmortisation) {
  const EfficiencyReport r = efficiency_report(accelerator_run());
  EXPECT_DOUBLE_EQ(r.accelerator_flops_per_step, 6e11);
  EXPECT_DOUBLE_EQ(r.cpu_flops_per_step, 3e11);  // the model's 8e12 less the 5e12 the programs stood for
  EXPECT_DOUBLE_EQ(r.achieved_gflops, 6e12 / 1.0 / 1e9);  // the accelerator's FLOPs over 1 s of steps
  EXPECT_DOUBLE_EQ(r.utilisation, 6000.0 / 19000);
  EXPECT_DOUBLE_EQ(r.compile_ms_per_step, 20);
}

TEST(Efficiency, CpuPeakComparesTheWholeStep) {
  EfficiencyTotals t = accelerator_run();
  t.peak_is_accelerator = false;
  t.peak_gflops = 16000;
  const EfficiencyReport r = efficiency_report(t);
  EXPECT_DOUBLE_EQ(r.achieved_gflops, 8000);
  EXPECT_DOUBLE_EQ(r.utilisation, 0.5);
}

TEST(Efficiency, NoPeakClaimsNoUtilisation) {
  EfficiencyTotals t = accelerator_run();
  t.peak_gflops = 0;
  t.peak_source = "simulated: no utilisation claimed";
  const EfficiencyReport r = efficiency_report(t);
  EXPECT_LT(r.utilisation, 0);
  const auto j = efficiency_json(r);
  EXPECT_TRUE(j["utilisation"].is_null());
  EXPECT_EQ(j["peak_source"], "simulated: no utilisation claimed");
  const std::vector<std::string> lines = efficiency_lines(r);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_NE(lines[2].find("simulated: no utilisation claimed"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[2].find('%'), std::string::npos) << lines[2];
}

// Clocks read at different places can disagree: parts that add up to more than the wall time
// stretch it (other = 0) instead of giving a negative share; a model count the programs' share
// exceeds (it cannot, but a rounding might) leaves the CPU none, not a negative count.
TEST(Efficiency, InconsistentClocksAndPaddedFlopsStayInRange) {
  EfficiencyTotals t = accelerator_run();
  t.wall_ms = 900;
  t.accelerator_model_flops = 9e12;
  const EfficiencyReport r = efficiency_report(t);
  EXPECT_DOUBLE_EQ(r.other, 0);
  EXPECT_NEAR(r.compute + r.io + r.compile + r.cpu + r.other, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.cpu_flops_per_step, 0);
}

TEST(Efficiency, AnEmptyRunIsAllOther) {
  const EfficiencyReport r = efficiency_report(EfficiencyTotals{});
  EXPECT_DOUBLE_EQ(r.other, 1);
  EXPECT_DOUBLE_EQ(r.compute + r.io + r.compile + r.cpu, 0);
  EXPECT_LT(r.utilisation, 0);
}

// `metrics`: compiles before the first step join step 1's row, later ones their step's; the
// efficiency event joins the last step's row.
TEST(Efficiency, MetricsRowsCarryCompilesAndTheReport) {
  const auto p = std::filesystem::temp_directory_path() / ("anetrain_eff_" + std::to_string(::getpid()) + ".jsonl");
  {
    std::ofstream f(p);
    f << R"({"event":"run_start","time":1,"resumed_from_step":0})" << "\n";
    f << R"({"event":"programs","time":1,"step":0,"compiles":8,"compile_ms":2.5,"load_ms":0.5,"programs":[]})" << "\n";
    f << R"({"event":"step","time":2,"step":1,"loss":3})" << "\n";
    f << R"({"event":"step","time":3,"step":2,"loss":2})" << "\n";
    f << R"({"event":"programs","time":3,"step":2,"compiles":1,"compile_ms":1,"load_ms":0,"programs":[]})" << "\n";
    f << R"({"event":"efficiency","time":4,"step":2,"steps":2,"shares":{"compute":0.25,"other":0.75},"utilisation":null})" << "\n";
  }
  const MetricsTable t = read_metrics(p.string());
  std::filesystem::remove(p);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_DOUBLE_EQ(*t.rows.at(1).at("programs.compiles"), 8);
  EXPECT_DOUBLE_EQ(*t.rows.at(1).at("programs.compile_ms"), 2.5);
  EXPECT_DOUBLE_EQ(*t.rows.at(2).at("programs.compiles"), 1);
  EXPECT_DOUBLE_EQ(*t.rows.at(2).at("efficiency.shares.compute"), 0.25);
  EXPECT_FALSE(t.rows.at(2).at("efficiency.utilisation").has_value());
  EXPECT_EQ(t.rows.at(1).count("efficiency.shares.compute"), 0u);
}

// The log panel's line (the web page's log.js writes the same).
TEST(Efficiency, LogLine) {
  const auto ev = nlohmann::json::parse(
      R"({"event":"efficiency","step":6,"shares":{"compute":0.4,"compile":0.01,"io":0.09,"cpu":0.3,"other":0.2},)"
      R"("utilisation":0.125,"peak_gflops":19000})");
  EXPECT_EQ(efficiency_text(ev),
            "efficiency: accelerator 40.0%, compile 1.0%, I/O 9.0%, CPU 30.0%, other 20.0%; utilisation 12.5% of 19000 GFLOP/s");
  const auto sim = nlohmann::json::parse(R"({"shares":{},"utilisation":null,"peak_source":"simulated: no utilisation claimed"})");
  EXPECT_EQ(efficiency_text(sim),
            "efficiency: accelerator -, compile -, I/O -, CPU -, other -; simulated: no utilisation claimed");
}

}  // namespace
}  // namespace anetrain
