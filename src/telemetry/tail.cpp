#include "telemetry/tail.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace anetrain {

LineTail::LineTail(std::string path, size_t max_line, size_t max_read)
    : path_(std::move(path)), max_line_(max_line), max_read_(max_read) {}

bool LineTail::poll(std::vector<std::string>& lines) {
  more_ = false;
  // O_NONBLOCK: a FIFO in the telemetry file's place must not block the reader in open().
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return false;
  }
  const uint64_t size = uint64_t(st.st_size);
  const bool replaced = inode_ != 0 && (uint64_t(st.st_ino) != inode_ || uint64_t(st.st_dev) != device_);
  inode_ = uint64_t(st.st_ino);
  device_ = uint64_t(st.st_dev);
  if (size < offset_ || replaced) {
    offset_ = 0;
    pending_.clear();
    skipping_ = false;
    restarted_ = true;
  }
  const size_t want = size_t(std::min<uint64_t>(size - offset_, max_read_));
  more_ = size - offset_ > want;
  std::string chunk(want, '\0');
  size_t got = 0;
  while (got < want) {
    const ssize_t n = ::pread(fd, chunk.data() + got, want - got, off_t(offset_ + got));
    if (n <= 0) break;
    got += size_t(n);
  }
  ::close(fd);
  chunk.resize(got);
  offset_ += got;

  size_t begin = 0;
  for (size_t nl; (nl = chunk.find('\n', begin)) != std::string::npos; begin = nl + 1) {
    if (skipping_) {
      skipping_ = false;  // the over-long line ends here
    } else {
      pending_.append(chunk, begin, nl - begin);
      if (!pending_.empty() && pending_.back() == '\r') pending_.pop_back();
      if (pending_.size() > max_line_) ++dropped_;
      else lines.push_back(std::move(pending_));
    }
    pending_.clear();
  }
  // What follows the last newline waits for the writer to finish the line.
  if (!skipping_) {
    pending_.append(chunk, begin, std::string::npos);
    if (pending_.size() > max_line_) {
      ++dropped_;
      pending_.clear();
      pending_.shrink_to_fit();
      skipping_ = true;
    }
  }
  return true;
}

}  // namespace anetrain
