// anetrain checkpoint container (.anck), self-describing and mmappable:
//   bytes 0–7   magic "ANETCKPT"
//   8–11        u32 format version (1)
//   12–15       u32 CRC32 of the JSON header
//   16–23       u64 JSON header length
//   24…         JSON header: {"kind", "meta": {...}, "tensors": [{name, dtype, shape, offset,
//               nbytes, crc32}]}, space-padded so the first tensor starts 64-byte aligned
//   tensors     each at its absolute `offset`, 64-byte aligned, little-endian
// Every tensor carries a CRC32, so a torn or bit-rotted file is detected, never trusted.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "model/config.h"

namespace anetrain {

struct AnckTensorIn {
  std::string name;
  std::vector<int64_t> shape;
  const float* data;
};

// Written through AtomicFile: the file exists complete or not at all.
void write_anck(const std::string& path, const std::string& kind, const nlohmann::json& meta,
                const std::vector<AnckTensorIn>& tensors);

struct AnckTensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t offset, nbytes;
  uint32_t crc32;
};

class AnckReader {
 public:
  // Validates magic, version, header CRC, every offset against the file size and every tensor CRC.
  explicit AnckReader(const std::string& path);
  const std::string& kind() const { return kind_; }
  const nlohmann::json& meta() const { return meta_; }
  const std::vector<AnckTensorInfo>& tensors() const { return tensors_; }
  const AnckTensorInfo* find(const std::string& name) const;
  // Copies tensor `name` into dst after checking the shape.
  void read(const std::string& name, const std::vector<int64_t>& shape, float* dst) const;
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  std::string kind_;
  nlohmann::json meta_;
  std::vector<AnckTensorInfo> tensors_;
};

uint32_t crc32_of(const void* data, size_t n);

// Refuses (Error naming the file) a config `c` that the checkpoint does not hold tensor for
// tensor — first its claimed size against the file's tensor bytes, then every parameter's name
// and shape — so that a header claiming a vocabulary of 4,194,304 is refused before a Model is
// allocated for it. load_model_checkpoint calls it between reading the header and allocating.
void check_anck_holds(const AnckReader& r, const ModelConfig& c);

}  // namespace anetrain
