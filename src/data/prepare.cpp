#include "data/prepare.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "data/loss_mask.h"
#include "data/shard.h"

namespace anetrain {

namespace fs = std::filesystem;

namespace {

void draw_progress(uint64_t done, uint64_t total, double seconds) {
  const int width = 30;
  const int filled = total ? int(double(done) / double(total) * width) : width;
  std::fprintf(stderr, "\r\033[K[%.*s%*s] %5.1f%%  %.1f MB/s", filled, "##############################", width - filled,
               "", total ? 100.0 * double(done) / double(total) : 100.0, seconds > 0 ? double(done) / 1e6 / seconds : 0.0);
}

}  // namespace

std::vector<std::string> write_shards(const std::vector<uint32_t>& ids, const std::vector<uint8_t>* mask,
                                      const std::string& stem, const Tokenizer& tok, const PrepareOptions& opt) {
  std::vector<std::string> names;
  for (uint64_t start = 0, part = 0; start < ids.size(); start += opt.shard_tokens, ++part) {
    char name[64];
    std::snprintf(name, sizeof name, "%s_%03llu.bin", stem.c_str(), (unsigned long long)part);
    names.push_back((fs::path(opt.out_dir) / name).string());
    // A shard is read with the mask beside it: one left from an earlier prepare --chat would
    // silently mask these tokens.
    if (!mask && fs::exists(loss_mask_path(names.back())))
      fail(loss_mask_path(names.back()) + ": a loss mask from an earlier prepare --chat would apply to the new " +
           names.back() + "\nhint: write to another -o directory, or remove the old shards and masks");
  }
  const uint32_t width = tok.vocab_size() > 65536 ? 4 : 2;
  for (uint64_t start = 0, part = 0; start < ids.size(); start += opt.shard_tokens, ++part) {
    const uint64_t end = std::min<uint64_t>(ids.size(), start + opt.shard_tokens);
    const std::string& path = names[part];
    // The mask first: a shard is never on disk without the mask it was written with.
    if (mask)
      write_loss_mask(loss_mask_path(path), std::vector<uint8_t>(mask->begin() + long(start), mask->begin() + long(end)));
    std::vector<uint32_t> slice(ids.begin() + long(start), ids.begin() + long(end));
    if (opt.format == "anetrain") {
      write_shard(path, slice, uint32_t(tok.vocab_size()), width, tok.fingerprint());
    } else {
      std::vector<uint16_t> raw(slice.begin(), slice.end());
      write_file_atomic(path, raw.data(), raw.size() * 2);
    }
  }
  return names;
}

PrepareSummary prepare(const std::vector<std::string>& inputs, const Tokenizer& tok, const PrepareOptions& opt) {
  if (opt.format != "anetrain" && opt.format != "llama2c")
    fail("prepare: --format must be anetrain or llama2c, got " + opt.format);
  if (opt.format == "llama2c" && tok.vocab_size() > 65536)
    fail("prepare: a vocabulary of " + std::to_string(tok.vocab_size()) +
         " does not fit llama2c's uint16 shards\nhint: use --format anetrain (4-byte ids)");
  std::vector<std::string> docs;
  for (const auto& path : inputs) {
    auto d = read_documents(path, opt.doc_per_line);
    for (auto& s : d) docs.push_back(std::move(s));
  }
  PrepareSummary sum;
  sum.documents = docs.size();
  for (const auto& d : docs) sum.bytes += d.size();

  // Documents are split into one contiguous range per thread; results are concatenated in
  // document order, so the shards do not depend on the thread count.
  const unsigned threads = opt.threads > 0 ? unsigned(opt.threads) : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::vector<int32_t>> encoded(docs.size());
  std::atomic<uint64_t> bytes_done{0};
  std::atomic<bool> failed{false};
  std::string error;
  std::vector<std::thread> pool;
  const auto t0 = std::chrono::steady_clock::now();
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      const size_t lo = docs.size() * t / threads, hi = docs.size() * (t + 1) / threads;
      try {
        for (size_t i = lo; i < hi && !failed; ++i) {
          // Documents are delimited by BOS in front; a tokenizer without one (Qwen3) ends each
          // document with its EOS (<|endoftext|>) instead.
          encoded[i] = tok.encode(docs[i], tok.bos_id() >= 0, tok.bos_id() < 0 && tok.eos_id() >= 0);
          bytes_done += docs[i].size();
        }
      } catch (const std::exception& e) {
        if (!failed.exchange(true)) error = e.what();
      }
    });
  const bool show = opt.progress && ::isatty(STDERR_FILENO);
  while (show) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    draw_progress(bytes_done, sum.bytes, s);
    if (bytes_done >= sum.bytes || failed) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (auto& th : pool) th.join();
  if (show) std::fprintf(stderr, "\n");
  if (failed) fail("prepare: tokenization failed: " + error);

  const int every = opt.val_frac > 0 ? std::max(2, int(std::lround(1.0 / opt.val_frac))) : 0;
  std::vector<uint32_t> train, val;
  for (size_t i = 0; i < encoded.size(); ++i) {
    auto& dst = (every && i % size_t(every) == size_t(every - 1)) ? val : train;
    for (int32_t id : encoded[i]) dst.push_back(uint32_t(id));
  }
  sum.train_tokens = train.size();
  sum.val_tokens = val.size();
  fs::create_directories(opt.out_dir);
  sum.train_shards = write_shards(train, nullptr, "train", tok, opt);
  sum.val_shards = write_shards(val, nullptr, "val", tok, opt);
  return sum;
}

}  // namespace anetrain
