// The dashboard's controls, below the terminal: the keys decoded from what terminals send, the
// run's events as log lines, the log panel's scrolling, and the control file between the
// dashboard and a trainer (addressed to one pid, never overwriting, a stranger's file left alone),
// and train.log kept only as anetrain's own file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/warn.h"
#include "telemetry/run_watch.h"
#include "telemetry/tui.h"
#include "telemetry/tui_keys.h"
#include "telemetry/tui_log.h"
#include "train/run_control.h"

namespace anetrain {
namespace {

namespace fs = std::filesystem;

TEST(TuiControls, DecodesKeysAsTerminalsSendThem) {
  // xterm/tmux CSI arrows, SS3 arrows (application mode), PgUp/PgDn, Home/End both ways, letters.
  const auto k = decode_keys("\x1b[A\x1bOB\x1b[5~\x1b[6~\x1b[H\x1b[4~\x1b[1;5AgP\x03x");
  const std::vector<TuiKey> want = {TuiKey::up,   TuiKey::down, TuiKey::page_up, TuiKey::page_down, TuiKey::home,
                                    TuiKey::end,  TuiKey::up,   TuiKey::letter,  TuiKey::letter,    TuiKey::interrupt,
                                    TuiKey::letter};
  ASSERT_EQ(k.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(int(k[i].key), int(want[i])) << i;
  EXPECT_EQ(k[7].letter, 'g');
  EXPECT_EQ(k[8].letter, 'p');  // lower-cased
  EXPECT_TRUE(decode_keys("\x1b[5").empty());  // cut short: dropped, not read as letters
}

TEST(TuiControls, EventsBecomeLogLines) {
  auto line = [](const char* j) {
    const std::string s = event_log_line(nlohmann::json::parse(j));
    return s.size() > 9 ? s.substr(9) : s;  // without "HH:MM:SS "
  };
  EXPECT_EQ(line(R"({"event":"step","time":1,"step":12,"loss":4.56789,"lr":0.001,"grad_norm":0.5,"ms":3.25})"),
            "step 12  loss 4.5679  lr 1.00e-03  grad 0.500  3.2 ms");
  EXPECT_EQ(line(R"({"event":"step","time":1,"step":13,"loss":null,"lr":0.001,"grad_norm":null,"ms":3,"skipped":true})"),
            "step 13  loss -  lr 1.00e-03  grad -  3.0 ms  skipped");
  EXPECT_EQ(line(R"({"event":"eval","time":1,"step":50,"val_loss":3.5,"best_val":3.25})"), "step 50: val loss 3.5000 (best 3.2500)");
  EXPECT_EQ(line(R"({"event":"sample","time":1,"step":20,"prompt":"Once","greedy":" upon"})"), "step 20: sample: Once upon");
  EXPECT_EQ(line(R"({"event":"checkpoint","time":1,"step":100,"path":"r/ckpt/step-00000100"})"),
            "step 100: checkpoint r/ckpt/step-00000100");
  EXPECT_EQ(line(R"({"event":"warning","time":1,"step":3,"text":"low disk"})"), "step 3: warning: low disk");
  EXPECT_EQ(line(R"({"event":"run_start","time":1,"resumed_from_step":40,"options":{}})"), "resumed from step 40");
  EXPECT_EQ(line(R"({"event":"run_start","time":1,"resumed_from_step":0,"options":{"model":"m"},"backend":"cpu"})"),
            "started: m on cpu");
  EXPECT_EQ(line(R"({"event":"run_end","time":1,"step":41,"status":"paused"})"), "ended at step 41: paused");
  EXPECT_EQ(event_log_line(nlohmann::json::parse(R"({"event":"heartbeat","time":1})")), "");
  EXPECT_EQ(event_log_line(nlohmann::json::parse(R"({"event":"step","time":1})")), "");  // no step number
}

TEST(TuiControls, LogPanelFollowsAndScrolls) {
  RunView v;
  for (int s = 1; s <= 50; ++s) {
    v.log.push_back("line " + std::to_string(s));
    ++v.log_added;
  }
  const int rows = 30, page = tui_log_rows(rows);
  ASSERT_GT(page, 3);
  auto text = [&](int scroll) {
    TuiPanel p;
    p.log_scroll = scroll;
    p.controls = true;
    p.status = "pause asked";
    std::string all;
    for (const auto& l : render_tui(v, "r", 100, rows, p)) all += l + "\n";
    return all;
  };
  const std::string follow = text(0), back = text(10), top = text(1000);
  EXPECT_NE(follow.find("  line 50\n"), std::string::npos) << follow;
  EXPECT_EQ(follow.find("  line " + std::to_string(50 - page) + "\n"), std::string::npos) << follow;  // one page only
  EXPECT_EQ(back.find("  line 50\n"), std::string::npos) << back;
  EXPECT_NE(back.find("  line 40\n"), std::string::npos) << back;
  EXPECT_NE(back.find("10 newer lines below"), std::string::npos) << back;
  EXPECT_NE(top.find("  line 1\n"), std::string::npos) << top;  // clamped to the oldest page
  EXPECT_NE(follow.find("pause asked"), std::string::npos);
  EXPECT_NE(follow.find("q quits  g sample now  p pause/resume  r restart"), std::string::npos);
  EXPECT_EQ(tui_log_rows(12), 0);  // too small: the chart keeps the room
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct RunFolder {
  fs::path dir = fs::temp_directory_path() / ("anetrain_control_" + std::to_string(::getpid()));
  RunFolder() { fs::create_directories(dir); }
  ~RunFolder() { fs::remove_all(dir); }
};

TEST(TuiControls, ControlFileReachesOnlyItsTrainer) {
  RunFolder run;
  std::vector<std::string> warnings;
  WarningScope scope([&](const std::string& w) { warnings.push_back(w); });
  ControlInbox inbox(run.dir.string());
  EXPECT_FALSE(inbox.poll().pause);  // nothing there
  send_control(run.dir.string(), ControlAction::sample, long(::getpid()));
  EXPECT_TRUE(control_pending(run.dir.string()));
  // A second request waits for the first to be taken: never overwritten.
  EXPECT_THROW(send_control(run.dir.string(), ControlAction::pause, long(::getpid())), Error);
  ControlRequests got = inbox.poll();
  EXPECT_TRUE(got.sample);
  EXPECT_FALSE(got.pause);
  EXPECT_FALSE(control_pending(run.dir.string()));  // taken
  // Addressed to another pid (a trainer that has stopped): taken away, not acted on.
  send_control(run.dir.string(), ControlAction::pause, long(::getpid()) + 100000);
  got = inbox.poll();
  EXPECT_FALSE(got.pause);
  EXPECT_FALSE(control_pending(run.dir.string()));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("not this one"), std::string::npos) << warnings[0];
  // Someone else's control.json: left as it is, one warning, and the dashboard does not replace it.
  const fs::path theirs = run.dir / "control.json";
  std::ofstream(theirs) << "{\"action\":\"pause\"}\n";
  EXPECT_FALSE(inbox.poll().pause);
  EXPECT_FALSE(inbox.poll().pause);
  EXPECT_EQ(warnings.size(), 2u);
  EXPECT_THROW(send_control(run.dir.string(), ControlAction::pause, long(::getpid())), Error);
  EXPECT_EQ(read_all(theirs), "{\"action\":\"pause\"}\n");
}

// train.log takes the output of the trainers the dashboard starts: only in a run folder of
// anetrain's, and never a file of someone else's.
TEST(TuiControls, TrainLogIsAnetrainsOwn) {
  RunFolder run;
  std::string problem = "unset";
  EXPECT_EQ(open_train_log(run.dir.string(), &problem), -1);  // no run.json: not a run (yet)
  EXPECT_EQ(problem, "");
  EXPECT_FALSE(fs::exists(run.dir / "train.log"));
  std::ofstream(run.dir / "run.json") << R"({"format":"anetrain-run","run_id":"x"})";
  int fd = open_train_log(run.dir.string(), &problem);
  ASSERT_GE(fd, 0) << problem;
  ASSERT_EQ(::write(fd, "one\n", 4), 4);
  ::close(fd);
  fd = open_train_log(run.dir.string(), &problem);  // ours: appended to
  ASSERT_GE(fd, 0) << problem;
  ASSERT_EQ(::write(fd, "two\n", 4), 4);
  ::close(fd);
  const std::string text = read_all(run.dir / "train.log");
  EXPECT_EQ(text.rfind("# anetrain train output", 0), 0u) << text;
  EXPECT_NE(text.find("\none\ntwo\n"), std::string::npos) << text;
  fs::remove(run.dir / "train.log");
  std::ofstream(run.dir / "train.log") << "my notes\n";
  EXPECT_EQ(open_train_log(run.dir.string(), &problem), -1);
  EXPECT_NE(problem.find("not a log of anetrain's"), std::string::npos) << problem;
  EXPECT_EQ(read_all(run.dir / "train.log"), "my notes\n");
}

TEST(TuiControls, RunningTrainerComesFromTheLockFile) {
  RunFolder run;
  EXPECT_FALSE(running_trainer(run.dir.string()));  // no lock file
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::ofstream(run.dir / "run.lock") << "pid " << ::getpid() << " on " << host << "\n";
  ASSERT_TRUE(running_trainer(run.dir.string()));
  EXPECT_EQ(*running_trainer(run.dir.string()), long(::getpid()));
  std::ofstream(run.dir / "run.lock") << "pid " << ::getpid() << " on another-host\n";
  EXPECT_FALSE(running_trainer(run.dir.string()));  // its pid means nothing here
  std::ofstream(run.dir / "run.lock") << "garbage\n";
  EXPECT_FALSE(running_trainer(run.dir.string()));
}

}  // namespace
}  // namespace anetrain
