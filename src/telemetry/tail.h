// Reads the lines appended to a file since the last call — the one way every live view follows
// a run's telemetry.jsonl. Bounded: one poll reads at most `max_read` bytes, and a "line" longer
// than `max_line` (not telemetry, or a file gone wrong) is dropped, counted, and skipped up to its
// newline without ever being held in memory whole. A file replaced (another inode) or truncated
// starts over.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace anetrain {

class LineTail {
 public:
  explicit LineTail(std::string path, size_t max_line = size_t(1) << 20, size_t max_read = size_t(8) << 20);
  // Appends the complete lines read this time to `lines` (without '\n'). False when the file
  // cannot be opened (not there yet, or any more); what was read before is kept.
  bool poll(std::vector<std::string>& lines);
  // poll() until the file is read to its end (a long file arrives a bounded chunk at a time).
  bool poll_all(std::vector<std::string>& lines) {
    bool found = poll(lines);
    while (found && more_) found = poll(lines);
    return found;
  }
  // True once after the file was found shorter than what was read (truncated or replaced):
  // the caller should forget what it built from the old lines.
  bool restarted() { bool r = restarted_; restarted_ = false; return r; }
  int64_t dropped_lines() const { return dropped_; }
  bool more_pending() const { return more_; }  // the last poll stopped at max_read
  const std::string& path() const { return path_; }

 private:
  std::string path_, pending_;
  size_t max_line_, max_read_;
  uint64_t offset_ = 0, inode_ = 0, device_ = 0;
  bool skipping_ = false, restarted_ = false, more_ = false;
  int64_t dropped_ = 0;
};

}  // namespace anetrain
