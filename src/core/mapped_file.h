// Read-only memory map of a whole file (RAII). Parsers bounds-check every offset against
// size() before touching data(), so a truncated file is an Error, never a fault.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace anetrain {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Throws "path: at byte off: <what> needs N bytes, file has M" unless [off, off+n) is inside.
  void require(uint64_t off, uint64_t n, const std::string& what) const;
  // Drops the pages wholly inside [off, off+n) from this process's memory once a reader has
  // copied them out (the file is unchanged; touching them again reads them back).
  void release(uint64_t off, uint64_t n) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// A file that appears at `path` only when commit() succeeds: writes go to a temp file in the same
// directory, commit() fsyncs, renames and fsyncs the directory. Destroyed uncommitted, it
// leaves nothing behind — a crash mid-write can never expose a half-written file.
// An existing `path` that is not a regular file (a device such as /dev/stdout or /dev/full, a
// FIFO) is written through directly instead: renaming over it would replace the device node.
// Every failure (open, write, fsync, close, rename) throws Error "PATH: write failed: <strerror>"
// (or "fsync failed", ...) naming `path` itself, never the temp file, which is removed.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* bytes, size_t n);
  uint64_t written() const { return written_; }
  void commit();
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail_io(const char* what, int err);
  std::string path_, tmp_;  // tmp_ empty when writing through to a device
  int fd_ = -1;
  uint64_t written_ = 0;
};

// Writes all n bytes to fd, retrying interrupted writes; false (errno set, or 0 bytes written) on
// the first failure. For descriptors that are not AtomicFiles (appended logs, a pipe).
bool write_fully(int fd, const void* bytes, size_t n);

// fsync of a directory (after a rename into it). Throws Error "DIR: fsync failed: ..." on an I/O
// error; a file system that cannot sync directories (EINVAL) is not an error.
void fsync_dir(const std::string& dir);

// Write `bytes` to path atomically: temp file in the same directory, fsync, rename, fsync dir.
void write_file_atomic(const std::string& path, const void* bytes, size_t n);

// A command never writes over what it reads: throws Error "refusing to write OUT: it is INPUT,
// which this command reads (...)" when an existing path of `outputs` is the same file as one of
// `inputs` — compared by device and inode, so another spelling, a hard link or a symlink counts.
// Paths that do not exist are skipped.
void refuse_output_over_input(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs);

}  // namespace anetrain
