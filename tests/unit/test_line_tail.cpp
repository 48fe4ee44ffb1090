// LineTail (how every live view reads telemetry: complete lines only, bounded memory on a hostile
// file, a replaced file starts over) and the per-step meters: CPU use; RAPL power, read here from a
// fake powercap tree with the kernel's layout, wrap-around included; powermetrics (macOS), its
// output parsed and a stand-in command run through the same spawn-and-read path.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "telemetry/meters.h"
#include "telemetry/tail.h"

namespace anetrain {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("anetrain_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void append(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::app | std::ios::binary);
  f << text;
}

TEST(LineTail, ReturnsOnlyCompleteLinesAsTheyArrive) {
  const fs::path d = temp_dir("tail"), f = d / "t.jsonl";
  LineTail tail(f.string());
  std::vector<std::string> lines;
  EXPECT_FALSE(tail.poll(lines));  // not there yet
  append(f, "one\ntw");
  ASSERT_TRUE(tail.poll(lines));
  EXPECT_EQ(lines, std::vector<std::string>{"one"});
  append(f, "o\r\nthree\n");
  lines.clear();
  ASSERT_TRUE(tail.poll(lines));
  EXPECT_EQ(lines, (std::vector<std::string>{"two", "three"}));
  lines.clear();
  ASSERT_TRUE(tail.poll(lines));
  EXPECT_TRUE(lines.empty());
  EXPECT_FALSE(tail.restarted());
  fs::remove_all(d);
}

TEST(LineTail, SkipsAnOverLongLineWithoutHoldingIt) {
  const fs::path d = temp_dir("tail_long"), f = d / "t.jsonl";
  LineTail tail(f.string(), /*max_line=*/16, /*max_read=*/8);
  append(f, "ok\n" + std::string(100, 'x'));  // the long line is not finished yet
  std::vector<std::string> lines;
  for (int i = 0; i < 20; ++i) tail.poll(lines);
  EXPECT_EQ(lines, std::vector<std::string>{"ok"});
  EXPECT_EQ(tail.dropped_lines(), 1);
  append(f, std::string(50, 'y') + "\nafter\n");  // it ends; the next line is read normally
  for (int i = 0; i < 20; ++i) tail.poll(lines);
  EXPECT_EQ(lines, (std::vector<std::string>{"ok", "after"}));
  EXPECT_EQ(tail.dropped_lines(), 1);
  fs::remove_all(d);
}

TEST(LineTail, ReadsABoundedChunkPerPoll) {
  const fs::path d = temp_dir("tail_chunk"), f = d / "t.jsonl";
  std::string text;
  for (int i = 0; i < 100; ++i) text += "line " + std::to_string(i) + "\n";
  append(f, text);
  LineTail tail(f.string(), 1 << 20, /*max_read=*/64);
  std::vector<std::string> lines;
  ASSERT_TRUE(tail.poll(lines));
  EXPECT_TRUE(tail.more_pending());
  EXPECT_LT(lines.size(), 100u);
  while (tail.more_pending()) tail.poll(lines);
  ASSERT_EQ(lines.size(), 100u);
  EXPECT_EQ(lines[99], "line 99");
  fs::remove_all(d);
}

TEST(LineTail, AShorterFileStartsOver) {
  const fs::path d = temp_dir("tail_trunc"), f = d / "t.jsonl";
  append(f, "first run, a long line\nsecond\n");
  LineTail tail(f.string());
  std::vector<std::string> lines;
  tail.poll(lines);
  std::ofstream(f, std::ios::trunc) << "new\n";
  lines.clear();
  ASSERT_TRUE(tail.poll(lines));
  EXPECT_TRUE(tail.restarted());
  EXPECT_FALSE(tail.restarted());  // reported once
  EXPECT_EQ(lines, std::vector<std::string>{"new"});
  fs::remove_all(d);
  lines.clear();
  EXPECT_FALSE(tail.poll(lines));  // gone: false, nothing thrown
}

TEST(LineTail, AFileReplacedByALongerOneStartsOver) {
  const fs::path d = temp_dir("tail_replace"), f = d / "t.jsonl", g = d / "new.jsonl";
  append(f, "old\n");
  LineTail tail(f.string());
  std::vector<std::string> lines;
  tail.poll(lines);
  append(g, "a much longer first line of the new run\nsecond\n");
  fs::rename(g, f);  // another inode at the same path
  lines.clear();
  ASSERT_TRUE(tail.poll(lines));
  EXPECT_TRUE(tail.restarted());
  EXPECT_EQ(lines, (std::vector<std::string>{"a much longer first line of the new run", "second"}));
  fs::remove_all(d);
}

TEST(Meters, CpuUseOfABusyThreadIsAboutOneCore) {
  CpuMeter m;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  volatile double x = 0;
  while (std::chrono::steady_clock::now() < until) x = x + 1;
  const double pct = m.percent_since_last();
  // One thread spinning: ≤ 100% plus accounting granularity; well above 0 even on a shared machine.
  EXPECT_GT(pct, 30.0);
  EXPECT_LT(pct, 130.0);
}

void write_zone(const fs::path& root, const std::string& dir, const std::string& name, uint64_t uj, uint64_t range) {
  fs::create_directories(root / dir);
  std::ofstream(root / dir / "name") << name << "\n";
  std::ofstream(root / dir / "energy_uj") << uj << "\n";
  std::ofstream(root / dir / "max_energy_range_uj") << range << "\n";
}

TEST(Meters, PowerSumsPackageZonesAndHandlesWrapAround) {
  const fs::path root = temp_dir("powercap");
  write_zone(root, "intel-rapl:0", "package-0", 1'000'000, 10'000'000);
  write_zone(root, "intel-rapl:1", "package-1", 9'900'000, 10'000'000);
  write_zone(root, "intel-rapl:0:0", "core", 0, 10'000'000);  // inside package-0: not added again
  write_zone(root, "intel-rapl:2", "psys", 0, 10'000'000);      // the whole platform: packages included
  RaplMeter p(root.string());
  ASSERT_TRUE(p.available());
  EXPECT_EQ(p.description(), "RAPL package-0 + package-1");
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // package-0 used 3 J; package-1 wrapped: 0.1 J to the top, then 1.9 J.
  std::ofstream(root / "intel-rapl:0" / "energy_uj") << 4'000'000 << "\n";
  std::ofstream(root / "intel-rapl:1" / "energy_uj") << 1'900'000 << "\n";
  std::ofstream(root / "intel-rapl:0:0" / "energy_uj") << 9'000'000 << "\n";
  std::ofstream(root / "intel-rapl:2" / "energy_uj") << 9'000'000 << "\n";
  const auto w = p.since_last();
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(w.has_value());
  // 5 J over the interval the meter saw (it started a little before t0, ended a little before dt).
  EXPECT_NEAR(w->watts, 5.0 / dt, 0.1 * 5.0 / dt);
  ASSERT_EQ(w->parts.size(), 2u);
  EXPECT_EQ(w->parts[1].first, "package-1");
  EXPECT_NEAR(w->parts[1].second / w->watts, 2.0 / 5.0, 1e-9);
  fs::remove_all(root);
}

TEST(Meters, PsysAloneWhenThereAreNoPackages) {
  const fs::path root = temp_dir("powercap_psys");
  write_zone(root, "intel-rapl:0", "psys", 0, 10'000'000);
  RaplMeter p(root.string());
  ASSERT_TRUE(p.available());
  EXPECT_EQ(p.description(), "RAPL psys");
  fs::remove_all(root);
}

TEST(Meters, NoPowercapSaysWhy) {
  RaplMeter p("/nonexistent/powercap");
  EXPECT_FALSE(p.available());
  EXPECT_NE(p.description().find("absent"), std::string::npos);
  EXPECT_FALSE(p.since_last().has_value());
}

// powermetrics' text output as macOS 14 prints it with --samplers cpu_power,gpu_power,ane_power.
const char kPowermetricsSample[] = R"(*** Sampled system activity (Mon Nov 30 19:30:00 2026 +0000) (1003.52ms elapsed) ***

**** Processor usage ****

E-Cluster HW active frequency: 1181 MHz
E-Cluster HW active residency:  38.99% (600 MHz: 0%)
CPU 0 frequency: 1334 MHz

CPU Power: 1500 mW
GPU Power: 20 mW
ANE Power: 480 mW
Combined Power (CPU + GPU + ANE): 2000 mW

**** GPU usage ****

GPU HW active frequency: 389 MHz
)";

TEST(Meters, PowermetricsParserReadsASample) {
  PowermetricsParser p;
  std::optional<PowerReading> got;
  const std::string text = kPowermetricsSample;
  for (size_t a = 0, b; (b = text.find('\n', a)) != std::string::npos; a = b + 1)
    if (auto r = p.feed(std::string_view(text).substr(a, b - a))) got = r;
  ASSERT_TRUE(got.has_value());
  EXPECT_DOUBLE_EQ(got->watts, 2.0);
  ASSERT_EQ(got->parts.size(), 3u);
  EXPECT_EQ(got->parts[2].first, "ane");
  EXPECT_DOUBLE_EQ(got->parts[2].second, 0.48);
  // Without a combined line, the next sample's header ends the sample and the parts are summed.
  PowermetricsParser q;
  EXPECT_FALSE(q.feed("CPU Power: 1000 mW").has_value());
  EXPECT_FALSE(q.feed("ANE Power: 250 mW").has_value());
  const auto r = q.feed("*** Sampled system activity (...) ***");
  ASSERT_TRUE(r.has_value());
  EXPECT_DOUBLE_EQ(r->watts, 1.25);
}

std::string fake_powermetrics(const fs::path& dir) {
  const fs::path sample = dir / "sample.txt";
  std::ofstream(sample) << kPowermetricsSample;
  return "while true; do cat '" + sample.string() + "'; sleep 0.05; done";
}

TEST(Meters, PowermetricsMeterAveragesTheSamplesOfAStep) {
  const fs::path d = temp_dir("powermetrics");
  PowermetricsMeter m({"sh", "-c", fake_powermetrics(d)});
  ASSERT_TRUE(m.available()) << m.description();
  EXPECT_EQ(m.description(), "powermetrics: cpu + gpu + ane (1 s samples)");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto r = m.since_last();
  ASSERT_TRUE(r.has_value());
  EXPECT_DOUBLE_EQ(r->watts, 2.0);
  ASSERT_EQ(r->parts.size(), 3u);
  EXPECT_DOUBLE_EQ(r->parts[0].second, 1.5);
  const auto t0 = std::chrono::steady_clock::now();
  {
    PowermetricsMeter never_ending({"sh", "-c", fake_powermetrics(d)});
  }  // stopping it does not hang
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
  fs::remove_all(d);
}

TEST(Meters, PowermetricsRefusedSaysWhy) {
  PowermetricsMeter m({"sh", "-c", "echo 'sudo: a password is required' >&2; exit 1"});
  EXPECT_FALSE(m.available());
  EXPECT_NE(m.description().find("needs root"), std::string::npos) << m.description();
  EXPECT_NE(m.description().find("a password is required"), std::string::npos) << m.description();
  EXPECT_FALSE(m.since_last().has_value());
  PowermetricsMeter missing({"/nonexistent/powermetrics"});
  EXPECT_FALSE(missing.available());
  EXPECT_NE(missing.description().find("did not start"), std::string::npos) << missing.description();
}

}  // namespace
}  // namespace anetrain
