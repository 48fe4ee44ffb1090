// Loss masks: which targets of a token shard count toward the loss (chat data trains on the
// assistant's turns only). A mask is a sibling file of its shard — "train_000.bin" →
// "train_000.mask" — so shards without one read exactly as before:
//   32-byte header: magic "ANTMASK1", u32 version (1), u32 bits per token (8),
//                   u64 token count (equal to the shard's), u64 reserved (0)
//   then one byte per token: 1 = predicting this token counts, 0 = it does not.
// A token's byte says whether it counts as a *target* (the prediction made from the tokens before it).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"

namespace anetrain {

// "dir/train_000.bin" → "dir/train_000.mask" (a name without ".bin" gets ".mask" appended).
std::string loss_mask_path(const std::string& shard_path);

class LossMaskFile {
 public:
  // Checks the header, that the count equals `shard_tokens` and the size matches it, and that every
  // byte is 0 or 1; each failure names the path and the byte offset.
  LossMaskFile(const std::string& path, uint64_t shard_tokens);
  const uint8_t* bytes() const { return base_; }
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  const uint8_t* base_ = nullptr;
};

void write_loss_mask(const std::string& path, const std::vector<uint8_t>& mask);

}  // namespace anetrain
