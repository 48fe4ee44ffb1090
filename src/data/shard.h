// Token shards, memory-mapped. Two formats:
//   llama2.c: raw little-endian uint16 ids, no header (BOS=1 between stories);
//   anetrain: 64-byte header — magic "ANTSHARD", u32 version (1), u32 id width (2|4),
//             u64 token count, u32 vocab size, u32 reserved, u64 tokenizer fingerprint — then
//             the ids. The 4-byte width holds Qwen3 ids above 65535.
// Either may have a loss mask next to it (data/loss_mask.h), opened with the shard.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "data/loss_mask.h"

namespace anetrain {

struct ShardHeader {
  uint32_t version = 1;
  uint32_t id_width = 2;
  uint64_t n_tokens = 0;
  uint32_t vocab_size = 0;
  uint64_t tokenizer_fingerprint = 0;
};

class TokenShard {
 public:
  explicit TokenShard(const std::string& path);
  const std::string& path() const { return file_.path(); }
  size_t size() const { return n_; }
  uint32_t at(size_t i) const {
    const uint8_t* p = base_ + i * width_;
    return width_ == 2 ? uint32_t(p[0] | (p[1] << 8)) : uint32_t(p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24));
  }
  uint64_t byte_offset(size_t i) const { return uint64_t(base_ - file_.data()) + i * width_; }
  bool has_header() const { return has_header_; }
  const ShardHeader& header() const { return header_; }
  // Whether predicting token i counts toward the loss: its mask byte, or 1 without a mask.
  bool has_mask() const { return mask_ != nullptr; }
  uint8_t counts(size_t i) const { return mask_ ? mask_->bytes()[i] : uint8_t(1); }
  // Throws "path: at byte N: token id X ≥ vocabulary size V" for the first offending id.
  void check_vocab(uint32_t vocab_size) const;

 private:
  MappedFile file_;
  const uint8_t* base_ = nullptr;
  size_t n_ = 0;
  uint32_t width_ = 2;
  bool has_header_ = false;
  ShardHeader header_;
  std::unique_ptr<LossMaskFile> mask_;
};

void write_shard(const std::string& path, const std::vector<uint32_t>& ids, uint32_t vocab_size, uint32_t id_width,
                 uint64_t tokenizer_fingerprint);

}  // namespace anetrain
