// A run folder, and the rules that keep everything else in it safe:
//   RUN/run.json   the run's settings plus anetrain's marker ("format": "anetrain-run"), the
//                  run's random id, and the checkpoints it wrote ("checkpoints": [steps])
//   RUN/run.lock   flock'ed by the one trainer using the run (released by the kernel on any
//                  exit, SIGKILL included); holds that trainer's pid and host
//   RUN/ckpt/step-00000100/{model,state}.anck   the checkpoints (train/checkpoint.h)
//   RUN/tokenizer/   a copy of the tokenizer the run was trained with (train/run_inputs.h), which
//                    run.json names beside the settings, with the base model of a fine-tuning run
// A folder is anetrain's only when its run.json carries the marker. anetrain deletes only
// checkpoints its run.json lists (or, after a crash between the rename and the list's update,
// ones whose state names this run's id), and only the files it writes inside them; a folder
// that holds anything else is left where it is, with a warning.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/checkpoint_model.h"

namespace anetrain {

// The held lock: kept for the life of a trainer. Throws Error naming the holder when another
// process has it.
class RunLock {
 public:
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

class RunDir {
 public:
  // A new run in `dir`: a folder that does not exist, is empty, or (force) holds none of
  // anetrain's names; or a run of anetrain's that has no checkpoint yet. Refused otherwise,
  // with nothing changed. Takes the lock.
  static RunDir create(const std::string& dir, bool force);
  // An existing run, to resume. Takes the lock. A run.json written before the marker existed
  // is recognised by its settings and gains the marker.
  static RunDir open(const std::string& dir);
  // The settings stored in DIR/run.json, without taking the lock (what --resume starts from).
  static nlohmann::json read_settings(const std::string& dir);

  RunDir(RunDir&&) noexcept;
  RunDir& operator=(RunDir&&) = delete;
  ~RunDir();  // a run never committed leaves no trace: its lock file, and the folder if made here

  const std::string& path() const { return dir_; }
  const std::string& run_id() const { return run_id_; }
  const nlohmann::json& settings() const { return options_; }  // run.json without the bookkeeping
  // Writes run.json: these settings, the marker, the id, the checkpoint list and what the run
  // was trained with (recorded at the first write, or the first since a run from before it). The
  // first write commits the run folder.
  void write_settings(const nlohmann::json& options);
  const std::vector<int64_t>& checkpoints() const { return checkpoints_; }
  // Records a checkpoint the trainer has renamed into place, or removed.
  void add_checkpoint(int64_t step);
  void drop_checkpoint(int64_t step);
  bool owns_checkpoint(int64_t step) const;

 private:
  RunDir(std::string dir, bool created);
  void store();
  std::string dir_, run_id_;
  nlohmann::json options_;
  std::vector<int64_t> checkpoints_;
  nlohmann::json inputs_ = nlohmann::json::object();  // run_input_keys() recorded so far
  std::vector<std::string> written_inputs_;           // what recording them created, for ~RunDir
  std::unique_ptr<RunLock> lock_;
  bool created_dir_ = false, committed_ = false;
};

}  // namespace anetrain
