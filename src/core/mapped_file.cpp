#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace anetrain {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path + ": not a regular file");
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail(path + ": cannot map: " + std::strerror(errno));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::require(uint64_t off, uint64_t n, const std::string& what) const {
  if (off > size_ || n > size_ - off)
    fail_at(path_, off, what + " needs " + std::to_string(n) + " bytes but the file has only " +
                            std::to_string(size_ > off ? size_ - off : 0) + " left (file size " +
                            std::to_string(size_) + "; truncated?)");
}

void MappedFile::release(uint64_t off, uint64_t n) const {
  const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
  const uint64_t begin = (off + page - 1) / page * page, end = std::min<uint64_t>(off + n, size_) / page * page;
  if (data_ && begin < end) ::madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_DONTNEED);
}

namespace {
// fsync on a pipe, a terminal or a device that cannot sync says EINVAL (or EROFS/ENOTSUP): the
// bytes went where they go, there is nothing to make durable.
bool unsyncable(int err) { return err == EINVAL || err == EROFS || err == ENOTSUP; }
}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  namespace fs = std::filesystem;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) fail(path + ": cannot open for writing: " + std::strerror(errno));
    return;
  }
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  tmp_ = (dir / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()))).string();
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path + ": cannot create (temp file " + tmp_ + "): " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ < 0) return;  // committed, or a failure already cleaned up
  ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

void AtomicFile::fail_io(const char* what, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  fail(path_ + ": " + what + " failed: " + std::strerror(err));
}

bool write_fully(int fd, const void* bytes, size_t n) {
  const char* p = static_cast<const char*>(bytes);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = ENOSPC;  // 0 bytes for a non-empty write: no room
      return false;
    }
    p += w;
    n -= size_t(w);
  }
  return true;
}

void AtomicFile::write(const void* bytes, size_t n) {
  if (fd_ < 0) fail(path_ + ": write after the file was closed");
  if (!write_fully(fd_, bytes, n)) fail_io("write", errno);
  written_ += uint64_t(n);
}

void AtomicFile::commit() {
  if (fd_ < 0) fail(path_ + ": commit after the file was closed");
  if (::fsync(fd_) != 0 && !(tmp_.empty() && unsyncable(errno))) fail_io("fsync", errno);
  const int rc = ::close(fd_);
  const int close_err = errno;
  fd_ = -1;
  if (rc != 0) {
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    fail(path_ + ": close failed: " + std::strerror(close_err));
  }
  if (tmp_.empty()) return;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp_.c_str());
    fail(path_ + ": rename failed: " + std::strerror(e));
  }
  std::filesystem::path target(path_);
  fsync_dir(target.has_parent_path() ? target.parent_path().string() : ".");
}

void fsync_dir(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    if (errno == EACCES) return;  // a directory we may write but not read: nothing we can sync
    fail(dir + ": cannot open the folder to sync it: " + std::strerror(errno));
  }
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0 && !unsyncable(err)) fail(dir + ": fsync failed: " + std::strerror(err));
}

void write_file_atomic(const std::string& path, const void* bytes, size_t n) {
  AtomicFile f(path);
  f.write(bytes, n);
  f.commit();
}

void refuse_output_over_input(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs) {
  struct stat in_st {}, out_st {};
  for (const std::string& out : outputs) {
    if (::stat(out.c_str(), &out_st) != 0) continue;
    for (const std::string& in : inputs)
      if (::stat(in.c_str(), &in_st) == 0 && in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino)
        fail("refusing to write " + out + ": it is " + in + ", which this command reads (" +
             (out == in ? "the same path" : "the same file under another name, a hard link or a symlink") +
             "); choose another output");
  }
}

}  // namespace anetrain
