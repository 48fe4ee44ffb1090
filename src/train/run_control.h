// Requests to a running trainer from `anetrain dashboard --tui` (the `g` and `p` keys): a sample
// now, or a pause (checkpoint and stop, as SIGUSR1 does). The channel is one file, RUN/control.json,
// rather than signals, because a file in the run folder can only reach that run's trainer, needs
// no pid to be trusted (a signal to a stale run.lock's pid could hit an unrelated process), and
// carries more than one kind of request.
//   - The dashboard writes it atomically (a temp name, then rename) and only when none is waiting,
//     so a request is never torn nor overwritten; it names the pid run.lock gives for the trainer.
//   - The trainer looks once per step (one stat when there is none), acts only on a request
//     addressed to its own pid, and deletes every request of anetrain's it reads: one left for a
//     trainer that has since stopped cannot pause the next. A control.json that is not a request
//     of anetrain's (no "format": "anetrain-control") is left where it is, with one warning.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace anetrain {

enum class ControlAction { sample, pause };

std::string control_file(const std::string& run_dir);

// The trainer holding RUN/run.lock on this host, when its pid is alive; nullopt otherwise (none
// ever ran, it ended, or it runs on another host that shares the folder). A stale lock file whose
// pid was reused reads as running: a request to it is then never taken, and nothing else happens.
std::optional<long> running_trainer(const std::string& run_dir);

// True while a request written earlier has not been taken yet.
bool control_pending(const std::string& run_dir);

// Writes the request for trainer `pid`. Throws Error when a request is still waiting or
// RUN/control.json is someone else's file (it is never overwritten).
void send_control(const std::string& run_dir, ControlAction action, long pid);

// RUN/train.log, where the trainers `dashboard` starts write, opened for appending: only when
// RUN is a run folder of anetrain's (run.json with its marker) and the file is anetrain's — made
// here with a first line of anetrain's, or already starting with it. -1 otherwise, with `problem`
// saying why ("" while RUN is not a run folder yet); a train.log of someone else's is untouched.
int open_train_log(const std::string& run_dir, std::string* problem);

struct ControlRequests {
  bool sample = false, pause = false;
};

// The trainer's side: what the dashboard asked since the last poll. Warnings (a request for
// another pid, a file that is not a request) go through core/warn.h.
class ControlInbox {
 public:
  explicit ControlInbox(std::string run_dir);
  ControlRequests poll();

 private:
  std::string path_;
  uint64_t ignored_ino_ = 0;  // the foreign file already warned about
  int64_t ignored_mtime_ = 0;
};

}  // namespace anetrain
