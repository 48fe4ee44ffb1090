// The terminal dashboard's model and drawing: RunWatch follows a growing telemetry file (only
// complete lines, bad ones counted, a resume drops the abandoned points, a shrunk file starts
// over), and render_tui always fills exactly the terminal it is given, never wider, and never
// passes a control sequence from the telemetry on to the terminal.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "telemetry/run_watch.h"
#include "telemetry/tui.h"

namespace anetrain {
namespace {

namespace fs = std::filesystem;

// Terminal cells of a UTF-8 line (every code point we draw is one cell).
int cells(const std::string& s) {
  int n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

TEST(Tui, WatchFollowsAGrowingFileAndDrawsToSize) {
  const fs::path dir = fs::temp_directory_path() / ("anetrain_tui_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path t = dir / "telemetry.jsonl";
  RunWatch w(dir.string());
  EXPECT_FALSE(w.poll());  // no file yet
  std::ofstream f(t);
  f << R"({"event":"run_start","options":{"model":"stories15m","steps":100},"params":15e6,"backend":"cpu"})" << "\n";
  for (int s = 1; s <= 40; ++s)
    f << R"({"event":"step","step":)" << s << R"(,"loss":)" << 6.0 - 0.05 * s << R"(,"lr":0.001,"phase_ms":{"forward":3}})" << "\n";
  f << R"({"event":"eval","step":40,"val_loss":4.1})" << "\n";
  f << "this is not json\n";
  f << R"({"event":"step","step":41,"lo)";  // half a line: the writer is still at it
  f.flush();
  ASSERT_TRUE(w.poll());
  EXPECT_EQ(w.view().loss.size(), 40u);
  EXPECT_EQ(w.view().val_loss.size(), 1u);
  EXPECT_EQ(w.view().bad_lines, 1);
  f << R"(ss":3.9})" << "\n";
  f << R"({"event":"sample","step":41,"prompt":"Once","greedy":" upon a time\nthere"})" << "\n";
  f << R"({"event":"run_start","resumed_from_step":20,"options":{"model":"stories15m","steps":100}})" << "\n";
  f.flush();
  w.poll();
  EXPECT_EQ(w.view().loss.size(), 20u);  // steps 21–41 belonged to the abandoned attempt
  EXPECT_TRUE(w.view().val_loss.empty());
  for (auto [cols, rows] : {std::pair{100, 30}, std::pair{40, 12}, std::pair{20, 8}}) {
    const auto lines = render_tui(w.view(), "runs/a", cols, rows);
    ASSERT_EQ(int(lines.size()), rows);
    for (const auto& l : lines) EXPECT_LE(cells(l), cols) << l;
  }
  const auto big = render_tui(w.view(), "runs/a", 120, 30);
  std::string all;
  for (const auto& l : big) all += l + "\n";
  EXPECT_NE(all.find("[training]"), std::string::npos) << all;
  EXPECT_NE(all.find("Once upon a time there"), std::string::npos) << all;  // newlines flattened
  EXPECT_NE(all.find("step 41/100"), std::string::npos) << all;
  f.close();
  std::ofstream(t, std::ios::trunc) << R"({"event":"run_end","status":"done"})" << "\n";
  w.poll();  // shorter than before: read again from the start
  EXPECT_TRUE(w.view().loss.empty());
  EXPECT_EQ(w.view().status, "done");
  fs::remove_all(dir);
  EXPECT_FALSE(w.poll());  // the run dir went away: no crash, the caller keeps its last view
}

// Every string the view draws comes from a file anyone can write to: an escape sequence in it
// would retitle the terminal, clear it or worse. Each must arrive visibly escaped instead.
TEST(Tui, DrawsHostileTelemetryTextEscaped) {
  RunView v;
  const std::string osc = "\x1b]0;pwned\x07", csi = "\x1b[2J", c1 = "\xc2\x9b" "31m", bad = "\xff\xfe";
  v.start = {{"event", "run_start"}, {"options", {{"model", "m" + osc + csi}}}, {"backend", "cpu" + c1},
             {"precision", "bf16"}, {"cpu", "Xeon" + osc}};
  v.last_step = {{"event", "step"}, {"step", 3}, {"loss", 2.5}, {"phase_ms", {{"fwd" + csi, 1.0}}}};
  v.last_sample = {{"event", "sample"}, {"step", 3}, {"prompt", "Once" + osc}, {"greedy", " upon" + csi + "\r\ta"}};
  v.status = "done" + csi;
  v.loss = {{1, 3.0}, {3, 2.5}};
  const auto lines = render_tui(v, "runs/" + csi, 400, 30);
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  for (unsigned char c : all) {
    EXPECT_TRUE(c == '\n' || (c >= 0x20 && c != 0x7f)) << "raw control byte " << int(c) << " in:\n" << all;
  }
  EXPECT_EQ(all.find("\xc2\x9b"), std::string::npos) << "a raw C1 control (CSI) reached the output";
  EXPECT_EQ(all.find("\xff"), std::string::npos);
  EXPECT_NE(all.find("m\\x1b]0;pwned\\x07\\x1b[2J"), std::string::npos) << all;  // the model name, escaped
  EXPECT_NE(all.find("cpu\\u009b31m"), std::string::npos) << all;
  EXPECT_NE(all.find("Xeon\\x1b]0;pwned\\x07"), std::string::npos) << all;
  EXPECT_NE(all.find("Once\\x1b]0;pwned\\x07 upon\\x1b[2J  a"), std::string::npos) << all;  // \r, \t flattened
  EXPECT_NE(all.find("[done\\x1b[2J]"), std::string::npos) << all;
  v.start["options"]["model"] = "m" + bad;
  const auto invalid = render_tui(v, "r", 200, 20);
  EXPECT_NE(invalid[0].find("m\\xff\\xfe"), std::string::npos) << invalid[0];
}

}  // namespace
}  // namespace anetrain
