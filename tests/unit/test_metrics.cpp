// `anetrain metrics`: telemetry.jsonl back to one row per step — nested fields flattened, evals
// merged into their step, a resumed run's repeated steps replaced by the resumed attempt, bad
// lines skipped and reported, and the CSV exact for counts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "telemetry/metrics.h"

namespace anetrain {
namespace {

namespace fs = std::filesystem;

TEST(Metrics, StepsEvalsResumeAndBadLines) {
  const fs::path dir = fs::temp_directory_path() / ("anetrain_metrics_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "telemetry.jsonl");
    f << R"({"event":"run_start","time":1,"resumed_from_step":0,"options":{"lr":0.001}})" << "\n";
    for (int s = 1; s <= 5; ++s)
      f << R"({"event":"step","time":)" << 10 + s << R"(,"step":)" << s << R"(,"loss":)" << 5.0 - 0.5 * s
        << R"(,"tokens":)" << 4096 * s << R"(,"skipped":false,"phase_ms":{"forward":12.5,"backward":30}})" << "\n";
    f << R"({"event":"eval","time":99,"step":4,"val_loss":3.25,"best_val":3.25})" << "\n";
    f << R"({"event":"step","time":16,"step":6,"loss":nu)" << "\n";  // cut by a crash
    f << R"({"event":"run_start","time":50,"resumed_from_step":3})" << "\n";
    f << R"({"event":"step","time":51,"step":4,"loss":null,"tokens":16384,"skipped":true})" << "\n";
    f << R"([1,2,3])" << "\n";
  }
  const MetricsTable t = read_metrics(dir.string());
  ASSERT_EQ(t.rows.size(), 4u);  // 1, 2, 3 from the first attempt, 4 from the resumed one; 5 dropped
  EXPECT_EQ(t.columns[0], "step");
  EXPECT_DOUBLE_EQ(*t.rows.at(2).at("loss"), 4.0);
  EXPECT_DOUBLE_EQ(*t.rows.at(1).at("phase_ms.forward"), 12.5);
  EXPECT_DOUBLE_EQ(*t.rows.at(1).at("time"), 11.0);
  EXPECT_FALSE(t.rows.at(4).at("loss").has_value());       // null stays null
  EXPECT_DOUBLE_EQ(*t.rows.at(4).at("skipped"), 1.0);
  EXPECT_EQ(t.rows.at(4).count("val_loss"), 0u);            // that eval belonged to the abandoned attempt
  ASSERT_EQ(t.warnings.size(), 2u);
  EXPECT_NE(t.warnings[0].find("telemetry.jsonl:8"), std::string::npos) << t.warnings[0];
  const std::string csv = metrics_csv(t);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "step,time,loss,tokens,skipped,phase_ms.forward,phase_ms.backward");
  EXPECT_NE(csv.find("\n2,12,4,8192,0,12.5,30\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\n4,51,,16384,1,,\n"), std::string::npos) << csv;
  fs::remove_all(dir);
}

TEST(Metrics, EvalMergesIntoItsStep) {
  const fs::path p = fs::temp_directory_path() / ("anetrain_metrics_eval_" + std::to_string(::getpid()) + ".jsonl");
  {
    std::ofstream f(p);
    f << R"({"event":"step","time":1,"step":10,"loss":2.5})" << "\n";
    f << R"({"event":"eval","time":2,"step":10,"val_loss":2.75,"best_val":2.75})" << "\n";
  }
  const MetricsTable t = read_metrics(p.string());
  EXPECT_DOUBLE_EQ(*t.rows.at(10).at("val_loss"), 2.75);
  EXPECT_DOUBLE_EQ(*t.rows.at(10).at("time"), 1.0);
  fs::remove(p);
  EXPECT_THROW(read_metrics(p.string()), Error);
}

}  // namespace
}  // namespace anetrain

#include "formats/npy.h"

namespace anetrain {
namespace {

// fuzz_npy's finding (fuzz/regressions/npy/shape-product-overflow): every dimension within
// bounds, their product past int64. The reader must refuse it with the file and offset.
TEST(Npy, ShapeWhoseProductOverflowsIsRefused) {
  const fs::path p = fs::temp_directory_path() / ("anetrain_npy_" + std::to_string(::getpid()) + ".npy");
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (274877906944, 274877906944), }";
  header.resize(118, ' ');
  header += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file += char(header.size() & 0xff);
  file += char(header.size() >> 8);
  file += header;
  std::ofstream(p, std::ios::binary) << file;
  try {
    read_npy(p.string());
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more elements than any file"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
  }
  fs::remove(p);
}

}  // namespace
}  // namespace anetrain
