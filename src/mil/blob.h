// ANE weight blob files: the bytes behind a BLOBFILE(path=..., offset=...) constant.
// Layout (as the ANE compiler accepts it): a 64-byte file header (byte 0 = 1, byte 4 = 2), then
// per tensor a 64-byte chunk header — u32 0xDEADBEEF, u32 1, u32 data bytes at +8, u32 absolute
// data offset at +16 — followed by the data. A BLOBFILE's offset names the chunk header, not
// the data. We pad each chunk's data to 64 bytes so every header stays aligned; for the seed's
// one-tensor files and its equal-size multi-chunk files that is exactly the seed's layout.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mil/program.h"

namespace anetrain::mil {

class BlobWriter {
 public:
  BlobWriter();
  // Appends one tensor and returns the offset to write in its BLOBFILE reference.
  uint64_t add_fp16(const std::vector<uint16_t>& halves);
  uint64_t add_fp16(const float* values, size_t n);  // rounds to nearest even
  uint64_t add_int8(const std::vector<int8_t>& values);
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  void write(const std::string& path) const;  // atomically (temp file + rename)

 private:
  uint64_t add_chunk(const void* data, size_t n);
  std::vector<uint8_t> bytes_;
};

// "@model_path/weights/x.bin" → "weights/x.bin"; rejects other roots and "..".
std::string blob_relative_path(const std::string& blob_path);
// "@model_path/weights/x.bin" → "<model_dir>/weights/x.bin".
std::string resolve_blob_path(const std::string& blob_path, const std::string& model_dir);

// The data of the chunk whose header sits at `offset`, checked against the size `type` needs.
// Errors name the file and the byte offset.
std::vector<uint8_t> read_blob_chunk(const std::string& file, uint64_t offset, const Type& type);
std::vector<uint8_t> read_blob_chunk(const uint8_t* bytes, size_t size, const std::string& file, uint64_t offset,
                                     const Type& type);

// Blob files held in memory, by their path under @model_path ("weights/mask.bin").
using BlobFiles = std::map<std::string, std::vector<uint8_t>>;

// Reads a BLOBFILE constant's values as doubles (fp16, fp32 or int8 data).
std::vector<double> read_blob_values(const Literal& blob, const std::string& model_dir);
std::vector<double> read_blob_values(const Literal& blob, const BlobFiles& files);

// Every BLOBFILE of the program resolves to a readable chunk of the right size.
void check_blob_references(const Program& p, const std::string& model_dir);

size_t elem_bytes(ElemType e);  // storage size in a blob or on an IOSurface

}  // namespace anetrain::mil
