// The table of Apple's published Neural Engine peaks (backends/ane/chip_peaks.h): names as macOS
// gives them find their family's entry, the Ultras their own, unknown chips none; figures that
// count int8 operations give half as many fp16 FLOPs.
#include <gtest/gtest.h>

#include "backends/ane/chip_peaks.h"

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

}  // namespace
}  // namespace anetrain::ane
