#include "data/shard.h"

#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace anetrain {

namespace {
constexpr char kMagic[8] = {'A', 'N', 'T', 'S', 'H', 'A', 'R', 'D'};
constexpr size_t kHeaderBytes = 64;
}  // namespace

TokenShard::TokenShard(const std::string& path) : file_(path) {
  const uint8_t* d = file_.data();
  if (file_.size() >= 8 && std::memcmp(d, kMagic, 8) == 0) {
    file_.require(0, kHeaderBytes, "anetrain shard header");
    std::memcpy(&header_.version, d + 8, 4);
    std::memcpy(&header_.id_width, d + 12, 4);
    std::memcpy(&header_.n_tokens, d + 16, 8);
    std::memcpy(&header_.vocab_size, d + 24, 4);
    std::memcpy(&header_.tokenizer_fingerprint, d + 32, 8);
    if (header_.version != 1) fail_at(path, 8, "unsupported shard version " + std::to_string(header_.version));
    if (header_.id_width != 2 && header_.id_width != 4)
      fail_at(path, 12, "id width must be 2 or 4 bytes, got " + std::to_string(header_.id_width));
    if (header_.n_tokens > (file_.size() - kHeaderBytes) / header_.id_width)
      fail_at(path, 16, "header claims " + std::to_string(header_.n_tokens) + " tokens but the file holds only " +
                            std::to_string((file_.size() - kHeaderBytes) / header_.id_width) + " (truncated?)");
    if (file_.size() != kHeaderBytes + header_.n_tokens * header_.id_width)
      fail_at(path, kHeaderBytes + header_.n_tokens * header_.id_width, "unexpected bytes after the last token");
    has_header_ = true;
    width_ = header_.id_width;
    base_ = d + kHeaderBytes;
    n_ = header_.n_tokens;
  } else {
    if (file_.size() % 2)
      fail_at(path, file_.size() - 1, "odd byte count: a raw llama2.c shard holds 2-byte ids (or bad anetrain magic)");
    width_ = 2;
    base_ = d;
    n_ = file_.size() / 2;
    header_.n_tokens = n_;
  }
  const std::string mask_path = loss_mask_path(path);
  if (std::filesystem::exists(mask_path)) mask_ = std::make_unique<LossMaskFile>(mask_path, n_);
}

void TokenShard::check_vocab(uint32_t vocab_size) const {
  if (has_header_ && header_.vocab_size > vocab_size)
    fail(path() + ": shard was made for a vocabulary of " + std::to_string(header_.vocab_size) +
         " but the model has " + std::to_string(vocab_size));
  for (size_t i = 0; i < n_; ++i)
    if (at(i) >= vocab_size)
      fail_at(path(), byte_offset(i), "token id " + std::to_string(at(i)) + " (token #" + std::to_string(i) +
                                          ") is outside the model's vocabulary of " + std::to_string(vocab_size));
}

void write_shard(const std::string& path, const std::vector<uint32_t>& ids, uint32_t vocab_size, uint32_t id_width,
                 uint64_t fingerprint) {
  if (id_width != 2 && id_width != 4) fail("write_shard: id width must be 2 or 4");
  std::vector<uint8_t> buf(kHeaderBytes + ids.size() * id_width, 0);
  std::memcpy(buf.data(), kMagic, 8);
  const uint32_t version = 1;
  const uint64_t n = ids.size();
  std::memcpy(buf.data() + 8, &version, 4);
  std::memcpy(buf.data() + 12, &id_width, 4);
  std::memcpy(buf.data() + 16, &n, 8);
  std::memcpy(buf.data() + 24, &vocab_size, 4);
  std::memcpy(buf.data() + 32, &fingerprint, 8);
  uint8_t* p = buf.data() + kHeaderBytes;
  for (uint32_t id : ids) {
    if (id_width == 2 && id > 0xffff) fail(path + ": token id " + std::to_string(id) + " does not fit a 2-byte shard");
    for (uint32_t b = 0; b < id_width; ++b) *p++ = uint8_t(id >> (8 * b));
  }
  write_file_atomic(path, buf.data(), buf.size());
}

}  // namespace anetrain
