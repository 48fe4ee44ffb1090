// Read-only memory map of a whole file (RAII). Parsers bounds-check every offset against
// size() before touching data(), so a truncated file is an Error, never a fault.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

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
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* bytes, size_t n);
  uint64_t written() const { return written_; }
  void commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

void fsync_dir(const std::string& dir);

// Write `bytes` to path atomically: temp file in the same directory, fsync, rename, fsync dir.
void write_file_atomic(const std::string& path, const void* bytes, size_t n);

}  // namespace anetrain
