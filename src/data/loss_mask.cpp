#include "data/loss_mask.h"

#include <cstring>

#include "core/error.h"

namespace anetrain {

namespace {
constexpr char kMaskMagic[8] = {'A', 'N', 'T', 'M', 'A', 'S', 'K', '1'};
constexpr size_t kMaskHeaderBytes = 32;
}  // namespace

std::string loss_mask_path(const std::string& shard_path) {
  const std::string ext = ".bin";
  if (shard_path.size() > ext.size() && shard_path.compare(shard_path.size() - ext.size(), ext.size(), ext) == 0)
    return shard_path.substr(0, shard_path.size() - ext.size()) + ".mask";
  return shard_path + ".mask";
}

LossMaskFile::LossMaskFile(const std::string& path, uint64_t shard_tokens) : file_(path) {
  const uint8_t* d = file_.data();
  file_.require(0, kMaskHeaderBytes, "loss mask header");
  if (std::memcmp(d, kMaskMagic, 8) != 0) fail_at(path, 0, "not a loss mask (bad magic)");
  uint32_t version = 0, bits = 0;
  uint64_t n = 0;
  std::memcpy(&version, d + 8, 4);
  std::memcpy(&bits, d + 12, 4);
  std::memcpy(&n, d + 16, 8);
  if (version != 1) fail_at(path, 8, "unsupported loss mask version " + std::to_string(version));
  if (bits != 8) fail_at(path, 12, "loss mask must hold 8 bits per token, got " + std::to_string(bits));
  if (n != shard_tokens)
    fail_at(path, 16, "loss mask covers " + std::to_string(n) + " tokens but its shard holds " +
                          std::to_string(shard_tokens) + " (a mask from another shard?)");
  if (file_.size() != kMaskHeaderBytes + n)
    fail_at(path, file_.size() < kMaskHeaderBytes + n ? file_.size() : kMaskHeaderBytes + n,
            "loss mask file holds " + std::to_string(file_.size()) + " bytes, expected " +
                std::to_string(kMaskHeaderBytes + n) + " (truncated or extended?)");
  base_ = d + kMaskHeaderBytes;
  for (uint64_t i = 0; i < n; ++i)
    if (base_[i] > 1)
      fail_at(path, kMaskHeaderBytes + i, "loss mask byte " + std::to_string(base_[i]) + " (token #" +
                                              std::to_string(i) + ") is neither 0 nor 1");
}

void write_loss_mask(const std::string& path, const std::vector<uint8_t>& mask) {
  std::vector<uint8_t> buf(kMaskHeaderBytes + mask.size(), 0);
  std::memcpy(buf.data(), kMaskMagic, 8);
  const uint32_t version = 1, bits = 8;
  const uint64_t n = mask.size();
  std::memcpy(buf.data() + 8, &version, 4);
  std::memcpy(buf.data() + 12, &bits, 4);
  std::memcpy(buf.data() + 16, &n, 8);
  for (size_t i = 0; i < mask.size(); ++i) {
    if (mask[i] > 1) fail(path + ": loss mask values must be 0 or 1");
    buf[kMaskHeaderBytes + i] = mask[i];
  }
  write_file_atomic(path, buf.data(), buf.size());
}

}  // namespace anetrain
