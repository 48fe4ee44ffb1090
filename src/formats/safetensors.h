// safetensors: u64 header length, JSON header {name: {dtype, shape, data_offsets}}, raw data.
// Reader memory-maps and validates every entry up front; writer pads the header to 8 bytes and
// writes atomically.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"

namespace anetrain {

struct StTensor {
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin;  // absolute byte offset in the file
  uint64_t nbytes;
  size_t numel() const;
};

class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path);
  const std::map<std::string, StTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const StTensor& info(const std::string& name) const;
  // Converts to fp32 into dst; throws unless the stored shape equals `expect`.
  void read_f32(const std::string& name, const std::vector<int64_t>& expect, float* dst) const;
  // Rows [r0, r0 + n) of a matrix `name` of shape `expect`, as fp32.
  void read_f32_rows(const std::string& name, const std::vector<int64_t>& expect, size_t r0, size_t n, float* dst) const;
  std::vector<float> read_f32(const std::string& name) const;
  const uint8_t* raw(const StTensor& t) const { return file_.data() + t.begin; }  // t.nbytes bytes
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  std::map<std::string, StTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct StWriteItem {
  std::string name;
  std::vector<int64_t> shape;
  const float* data;  // fp32 source, converted to the file dtype on write
};

void write_safetensors(const std::string& path, const std::vector<StWriteItem>& items, DType dtype,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});
// The same into an open AtomicFile, uncommitted: a caller writing several files commits them together.
void write_safetensors(AtomicFile& f, const std::vector<StWriteItem>& items, DType dtype,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace anetrain
