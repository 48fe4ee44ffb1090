#include "train/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/mapped_file.h"
#include "train/checkpoint.h"
#include "train/run_inputs.h"

namespace anetrain {

namespace fs = std::filesystem;

namespace {

constexpr int kFormatVersion = 1;
// The names anetrain writes at a run folder's top; with --out-force, none may exist already.
// control.json is the dashboard's request to the trainer (run_control.h), train.log the output of
// a trainer the dashboard started: a user's file by either name would be taken for anetrain's.
constexpr const char* kOwnNames[] = {"run.json", "run.lock", "telemetry.jsonl", "ckpt", kRunTokenizerDir,
                                     "control.json", "train.log"};

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown host";
  return buf;
}

std::string new_run_id() {
  std::random_device rd;
  const uint64_t v = (uint64_t(rd()) << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// A run.json from before the marker: the settings anetrain wrote, recognised by their keys.
bool legacy_settings(const nlohmann::json& j) {
  for (const char* key : {"model", "data", "out", "seq", "batch", "steps", "lr", "ckpt_every"})
    if (!j.contains(key)) return false;
  return true;
}

// run.json's bookkeeping, which is not the settings: what RunDir adds to them when it writes.
void erase_bookkeeping(nlohmann::json& j) {
  for (const char* key : {"format", "format_version", "run_id", "checkpoints"}) j.erase(key);
  for (const std::string& key : run_input_keys()) j.erase(key);
}

}  // namespace

RunLock::RunLock(const std::string& run_dir) : path_((fs::path(run_dir) / "run.lock").string()) {
  // The lock is on the file's open description, so it cannot leak to a child process.
  for (int attempt = 0;; ++attempt) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(path_ + ": cannot open the run's lock file: " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) break;  // held: reported below
    // Locked — but the file may have been unlinked by a failed trainer in between: only the
    // file the path names now is the run's lock.
    struct stat held {}, named {};
    if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev)
      break;
    ::close(fd_);
    fd_ = -1;
    if (attempt == 10) fail(path_ + ": the run's lock file keeps changing; is another trainer starting?");
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    std::string holder;
    char buf[256] = {};
    if (::pread(fd_, buf, sizeof buf - 1, 0) > 0) holder = buf;
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (e == EWOULDBLOCK)
      fail(run_dir + " is in use by another trainer (" + (holder.empty() ? std::string("holder unknown") : holder) +
           ")\nhint: wait for it to finish or stop it (Ctrl-C checkpoints and exits); two trainers on one run "
           "folder would overwrite each other's checkpoints");
    fail(path_ + ": cannot lock: " + std::strerror(e));
  }
  // The holder's name is a courtesy for the next one refused: a full disk must not cost the lock.
  const std::string me = "pid " + std::to_string(::getpid()) + " on " + host_name() + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    const ssize_t written = ::pwrite(fd_, me.data(), me.size(), 0);
    (void)written;
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

RunDir::RunDir(std::string dir, bool created) : dir_(std::move(dir)), created_dir_(created) {}

RunDir::RunDir(RunDir&& o) noexcept
    : dir_(std::move(o.dir_)), run_id_(std::move(o.run_id_)), options_(std::move(o.options_)),
      checkpoints_(std::move(o.checkpoints_)), inputs_(std::move(o.inputs_)),
      written_inputs_(std::move(o.written_inputs_)), lock_(std::move(o.lock_)), created_dir_(o.created_dir_),
      committed_(o.committed_) {
  o.committed_ = true;  // the moved-from object must not clean up
  o.created_dir_ = false;
}

RunDir::~RunDir() {
  if (committed_ || !lock_) return;
  // A run that failed before its first run.json: take back only what this object made. The lock
  // file goes while it is still held, so no one can lock the name on its way out.
  std::error_code ec;
  for (auto it = written_inputs_.rbegin(); it != written_inputs_.rend(); ++it) fs::remove(*it, ec);  // files, then their folder
  fs::remove(lock_->path(), ec);
  lock_.reset();
  if (created_dir_) fs::remove(dir_, ec);  // only succeeds while the folder is empty
}

RunDir RunDir::create(const std::string& dir, bool force) {
  std::error_code ec;
  const bool exists = fs::exists(dir, ec);
  if (exists && !fs::is_directory(dir, ec))
    fail(dir + ": exists and is not a folder; --out names the run's folder (choose a new name)");
  bool reuse_marked = false;
  if (exists) {
    if (fs::exists(fs::path(dir) / "run.json", ec)) {
      const nlohmann::json j = read_run_json(dir);
      if (!marked_run_json(j))
        fail(dir + "/run.json was not written by anetrain; refusing to overwrite it\nhint: choose a new --out");
      reuse_marked = true;
    } else {
      bool empty = true, clash = false;
      std::string clash_name;
      for (const auto& e : fs::directory_iterator(dir)) {
        empty = false;
        for (const char* own : kOwnNames)
          if (e.path().filename() == own) clash = true, clash_name = own;
      }
      if (!empty && !force)
        fail(dir + " is not empty and is not an anetrain run folder; nothing in it was changed\n"
             "hint: choose a new or empty --out, or add --out-force to put a run beside the files there "
             "(anetrain never deletes what it did not write)");
      if (clash)
        fail(dir + "/" + clash_name + " exists and is not anetrain's; a run there would need that name\n"
             "hint: choose a new --out");
    }
  } else {
    fs::create_directories(dir, ec);
    if (ec) fail(dir + ": cannot create the run folder: " + ec.message());
  }
  RunDir r(dir, !exists);
  r.lock_ = std::make_unique<RunLock>(dir);
  if (reuse_marked) {
    // A marked run with no checkpoint can start over (its first life ended before step one's
    // save); one with checkpoints is continued, never replaced.
    // Listed checkpoints, and any on disk: one renamed into place just before a crash is not
    // listed yet, and starting over would orphan it.
    auto listed = listed_checkpoints(dir);
    if ((listed && !listed->empty()) || !checkpoints_on_disk(dir).empty())
      fail(dir + " already holds a run.\nhint: continue it with `anetrain train --resume " + dir +
           "`, or choose a new --out");
    r.committed_ = true;  // it was anetrain's before this process came
  }
  r.run_id_ = new_run_id();
  return r;
}

RunDir RunDir::open(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir + ": no such run folder");
  nlohmann::json j = read_run_json(dir);
  if (!marked_run_json(j) && !legacy_settings(j)) fail(dir + "/run.json: not an anetrain run's settings");
  RunDir r(dir, false);
  r.lock_ = std::make_unique<RunLock>(dir);
  r.committed_ = true;
  j = read_run_json(dir);  // again under the lock: the holder may have just written it
  if (marked_run_json(j)) {
    r.run_id_ = j.value("run_id", std::string());
    if (j.contains("checkpoints") && j["checkpoints"].is_array())
      for (const auto& s : j["checkpoints"])
        if (s.is_number_integer()) r.checkpoints_.push_back(s.get<int64_t>());
  }
  if (r.run_id_.empty()) r.run_id_ = new_run_id();
  // Checkpoints on disk that are this run's but not listed: written by an older anetrain (no
  // marker yet), or renamed into place just before a crash that cost the list's update.
  for (int64_t step : checkpoints_on_disk(dir))
    if (!r.owns_checkpoint(step) && adoptable_checkpoint(dir, step, r.run_id_, /*any_run=*/!marked_run_json(j)))
      r.checkpoints_.push_back(step);
  std::sort(r.checkpoints_.begin(), r.checkpoints_.end());
  for (const std::string& key : run_input_keys())
    if (j.contains(key)) r.inputs_[key] = j[key];
  erase_bookkeeping(j);
  r.options_ = j;
  return r;
}

nlohmann::json RunDir::read_settings(const std::string& dir) {
  nlohmann::json j = read_run_json(dir);
  if (!marked_run_json(j) && !legacy_settings(j)) fail(dir + "/run.json: not an anetrain run's settings");
  erase_bookkeeping(j);
  return j;
}

void RunDir::write_settings(const nlohmann::json& options) {
  options_ = options;
  // A caller may name an input itself (an adapter run its base model); the first record stands.
  for (const std::string& key : run_input_keys())
    if (options_.contains(key)) {
      if (!inputs_.contains(key)) inputs_[key] = options_[key];
      options_.erase(key);
    }
  record_run_inputs(dir_, options_, inputs_, written_inputs_);
  store();
  committed_ = true;
}

void RunDir::add_checkpoint(int64_t step) {
  if (!owns_checkpoint(step)) checkpoints_.push_back(step);
  std::sort(checkpoints_.begin(), checkpoints_.end());
  store();
}

void RunDir::drop_checkpoint(int64_t step) {
  checkpoints_.erase(std::remove(checkpoints_.begin(), checkpoints_.end(), step), checkpoints_.end());
  store();
}

bool RunDir::owns_checkpoint(int64_t step) const {
  return std::find(checkpoints_.begin(), checkpoints_.end(), step) != checkpoints_.end();
}

void RunDir::store() {
  // The marker first, so a person opening the file sees whose it is.
  nlohmann::ordered_json j = {{"format", kRunFormat}, {"format_version", kFormatVersion}, {"run_id", run_id_},
                              {"checkpoints", checkpoints_}};
  for (auto it = options_.begin(); it != options_.end(); ++it) j[it.key()] = it.value();
  for (auto it = inputs_.begin(); it != inputs_.end(); ++it) j[it.key()] = it.value();
  const std::string text = j.dump(2) + "\n";
  write_file_atomic((fs::path(dir_) / "run.json").string(), text.data(), text.size());
}

}  // namespace anetrain
