// The table of Apple's published Neural Engine peaks (backends/ane/chip_peaks.h): names as macOS
// gives them find their family's entry, the Ultras their own, unknown chips none; figures that
// count int8 operations give half as many fp16 FLOPs.
#include <gtest/gtest.h>

#include "backends/ane/ane_backend.h"
#include "backends/ane/chip_peaks.h"
#include "backends/ane/fake/fake_api.h"
#include "backends/ane/make_executor.h"
#include "backends/ane/runtime/runtime.h"
#include "contract/registry.h"

namespace anetrain::ane {
namespace {

TEST(ChipPeaks, VariantsFindTheirFamily) {
  for (const char* name : {"Apple M1", "Apple M1 Pro", "Apple M1 Max", "M1", "  Apple M1 Max  "}) {
    const ChipPeak* c = find_chip_peak(name);
    ASSERT_NE(c, nullptr) << name;
    EXPECT_STREQ(c->chip, "M1") << name;
    EXPECT_DOUBLE_EQ(c->fp16_tflops(), 11) << name;
  }
  const ChipPeak* m2max = find_chip_peak("Apple M2 Max");
  ASSERT_NE(m2max, nullptr);
  EXPECT_DOUBLE_EQ(m2max->fp16_tflops(), 15.8);
  const ChipPeak* m3pro = find_chip_peak("Apple M3 Pro");
  ASSERT_NE(m3pro, nullptr);
  EXPECT_DOUBLE_EQ(m3pro->fp16_tflops(), 18);
}

TEST(ChipPeaks, UltrasHaveTheirOwnEntry) {
  const ChipPeak* u = find_chip_peak("Apple M1 Ultra");
  ASSERT_NE(u, nullptr);
  EXPECT_STREQ(u->chip, "M1 Ultra");
  EXPECT_DOUBLE_EQ(u->fp16_tflops(), 22);
  const ChipPeak* u2 = find_chip_peak("Apple M2 Ultra");
  ASSERT_NE(u2, nullptr);
  EXPECT_DOUBLE_EQ(u2->fp16_tflops(), 31.6);
}

TEST(ChipPeaks, Int8FiguresAreHalvedForFp16) {
  const ChipPeak* m4 = find_chip_peak("Apple M4 Pro");
  ASSERT_NE(m4, nullptr);
  EXPECT_DOUBLE_EQ(m4->published_tops, 38);
  EXPECT_EQ(m4->counts, PublishedPrecision::int8);
  EXPECT_DOUBLE_EQ(m4->fp16_tflops(), 19);
  const ChipPeak* a17 = find_chip_peak("Apple A17 Pro");
  ASSERT_NE(a17, nullptr);
  EXPECT_DOUBLE_EQ(a17->fp16_tflops(), 17.5);
  const ChipPeak* a16 = find_chip_peak("Apple A16");
  ASSERT_NE(a16, nullptr);
  EXPECT_DOUBLE_EQ(a16->fp16_tflops(), 17);
}

TEST(ChipPeaks, UnknownChipsHaveNoEntry) {
  for (const char* name : {"", "Apple M5", "Apple M10", "Apple M", "M40", "Intel(R) Xeon(R) Platinum 8480+", "Apple A18 Pro"})
    EXPECT_EQ(find_chip_peak(name), nullptr) << name;
}

TEST(ChipPeaks, OnlyAMacReadsItsChip) {
#if defined(__APPLE__)
  EXPECT_FALSE(this_machine_chip().empty());
#else
  EXPECT_EQ(this_machine_chip(), "");
#endif
}

// The runtime over a framework that names its chip: the ane backend's peak is that chip's fp16
// figure, on the accelerator, with its source; a chip the table does not know, and the fake
// framework as `--backend ane-fake` makes it, claim none.
MatrixPeak runtime_peak(const std::string& chip) {
  FakeOptions o;
  o.chip = chip;
  AneBackend be("ane", std::make_unique<AneRuntime>(make_fake_api(o)), make_backend("cpu"));
  EXPECT_DOUBLE_EQ(be.matrix_peak_gflops(), be.matrix_peak().gflops);
  return matrix_peak(be.caps());
}

TEST(ChipPeaks, TheAneBackendClaimsItsChipsPeak) {
  const MatrixPeak m4 = runtime_peak("Apple M4 Max");
  EXPECT_DOUBLE_EQ(m4.gflops, 19000);
  EXPECT_TRUE(m4.accelerator);
  EXPECT_NE(m4.source.find("Apple M4 Max: Apple's 38 TOPS (int8), 19 TFLOPS fp16"), std::string::npos) << m4.source;
  const MatrixPeak m2 = runtime_peak("Apple M2");
  EXPECT_DOUBLE_EQ(m2.gflops, 15800);
  const MatrixPeak m5 = runtime_peak("Apple M5");
  EXPECT_EQ(m5.gflops, 0);
  EXPECT_NE(m5.source.find("Apple M5: no published Neural Engine peak"), std::string::npos) << m5.source;
  for (const char* simulated : {"ane-fake", "ane-sim"}) {
    AneBackend be(simulated, make_executor(simulated), make_backend("cpu"));
    const MatrixPeak p = matrix_peak(be.caps());
    EXPECT_EQ(p.gflops, 0) << simulated;
    EXPECT_EQ(p.source, "simulated: no utilisation claimed") << simulated;
  }
}

}  // namespace
}  // namespace anetrain::ane
