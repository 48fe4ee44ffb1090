// A write that fails is an Error naming the file and errno, never a silent loss:
// telemetry on a full device, a line cut part-way (truncated back to the last full line), and
// every model writer out of space (the target named, its temp file removed, nothing left behind).
// "Out of space" is RLIMIT_FSIZE: a write past the limit fails with EFBIG part-way, as a full disk
// would, without needing a small file system.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>

#include "core/mapped_file.h"
#include "format_test_util.h"
#include "formats/anck.h"
#include "formats/gguf.h"
#include "formats/hf.h"
#include "formats/llama2c.h"
#include "formats/safetensors.h"
#include "model/packed_model.h"
#include "telemetry/jsonl.h"

namespace anetrain {
namespace {

using namespace fmt_test;

// Files this process writes may grow to `bytes`; restored (and SIGXFSZ restored) on scope exit.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = signal(SIGXFSZ, SIG_IGN);  // else the kernel kills the process instead of failing the write
    rlimit r = saved_;
    r.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &r);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit saved_{};
  sighandler_t old_handler_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool empty_dir(const fs::path& d) { return fs::is_empty(d); }

TEST(WriteErrors, TelemetryOnFullDeviceThrowsNamingIt) {
  JsonlWriter w("/dev/full");
  const std::string msg = error_of([&] { w.emit("step", {{"step", 1}, {"loss", 2.5}}); });
  EXPECT_NE(msg.find("/dev/full: write failed: No space left on device"), std::string::npos) << msg;
}

TEST(WriteErrors, TelemetryLineCutPartWayIsTruncatedBack) {
  const fs::path dir = scratch("jsonl_cut");
  const fs::path path = dir / "telemetry.jsonl";
  JsonlWriter w(path.string());
  w.emit("run_start", {{"step", 0}});
  const std::string before = slurp(path);
  {
    FileSizeLimit limit(before.size() + 16);  // room for 16 bytes of the next line, not all of it
    const std::string msg = error_of([&] { w.emit("step", {{"step", 1}, {"note", std::string(200, 'x')}}); });
    EXPECT_NE(msg.find(path.string() + ": write failed: File too large"), std::string::npos) << msg;
  }
  EXPECT_EQ(slurp(path), before);  // the cut line is gone, the earlier one intact
  w.emit("step", {{"step", 2}});   // space again: the stream goes on with whole lines
  const std::string after = slurp(path);
  EXPECT_EQ(after.substr(0, before.size()), before);
  EXPECT_EQ(after.back(), '\n');
  EXPECT_EQ(std::count(after.begin(), after.end(), '\n'), 2);
}

TEST(WriteErrors, AtomicWriteNamesTargetAndRemovesTemp) {
  const fs::path dir = scratch("atomic_full");
  const std::string target = (dir / "out.bin").string();
  const std::vector<char> bytes(1 << 16, 'a');
  FileSizeLimit limit(4096);
  const std::string msg = error_of([&] { write_file_atomic(target, bytes.data(), bytes.size()); });
  EXPECT_NE(msg.find(target + ": write failed: File too large"), std::string::npos) << msg;
  EXPECT_TRUE(empty_dir(dir)) << "a temp file was left behind";
}

// A device or FIFO named as output is written through, never replaced by a renamed temp file
// (as root, a rename over /dev/full would replace the device node).
TEST(WriteErrors, AtomicFileWritesThroughADeviceNode) {
  const fs::path dir = scratch("atomic_dev");
  const fs::path node = dir / "full";
  if (::mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 7)) != 0) GTEST_SKIP() << "mknod not permitted here";
  const std::string msg = error_of([&] {
    AtomicFile f(node.string());
    f.write("hello\n", 6);
    f.commit();
  });
  EXPECT_NE(msg.find(node.string() + ": write failed: No space left on device"), std::string::npos) << msg;
  struct stat st {};
  ASSERT_EQ(::stat(node.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "the device node was replaced";
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), {}), 1) << "a temp file was left behind";
}

// Every model writer used by export/convert/checkpoints, out of space: an Error naming the target
// with errno's text, and the folder it wrote into as it was (empty).
TEST(WriteErrors, ModelWritersOutOfSpaceLeaveNothing) {
  auto m = random_model(tiny_llama(false), 3);
  const fs::path dir = scratch("writers_full");
  std::vector<AnckTensorIn> anck;
  std::vector<StWriteItem> st;
  for (const auto& s : m->table.specs()) {
    anck.push_back({s.name, s.shape, m->param(s)});
    st.push_back({s.name, s.shape, m->param(s)});
  }
  ModelConfig wide = tiny_llama(false);  // Q8_0 groups are 32 wide: every width a multiple of 32
  wide.dim = 64, wide.head_dim = 16, wide.hidden_dim = 96;
  auto packed = pack_model(random_model(wide, 3), WeightFormat::q8_0, 32);
  const std::vector<std::pair<std::string, std::function<void(const std::string&)>>> writers = {
      {"model.anck", [&](const std::string& p) { write_anck(p, "model", {}, anck); }},
      {"model.safetensors", [&](const std::string& p) { write_safetensors(p, st, DType::f32); }},
      {"model.gguf", [&](const std::string& p) { save_gguf(*m, p, DType::f32); }},
      {"model_v0.bin", [&](const std::string& p) { save_llama2c(*m, p, 0); }},
      {"model_v1.bin", [&](const std::string& p) { save_llama2c(*m, p, 1); }},
      {"model_q80.bin", [&](const std::string& p) { save_llama2c_v2(*packed, p); }},
      {"hf", [&](const std::string& p) { save_hf_folder(*m, p, DType::f32); }},
  };
  FileSizeLimit limit(2048);  // every one of these files is larger
  for (const auto& [name, write] : writers) {
    const std::string target = (dir / name).string();
    const std::string msg = error_of([&] { write(target); });
    EXPECT_NE(msg.find(": write failed: File too large"), std::string::npos) << name << ": " << msg;
    EXPECT_NE(msg.find(target), std::string::npos) << name << ": " << msg;
    EXPECT_EQ(msg.find(".tmp."), std::string::npos) << name << " names its temp file: " << msg;
    EXPECT_TRUE(empty_dir(dir)) << name << " left " << fs::directory_iterator(dir)->path();
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
}

}  // namespace
}  // namespace anetrain
