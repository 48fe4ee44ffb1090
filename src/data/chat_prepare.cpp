// `prepare --chat`: conversations read and checked in order (each bad line named or, with
// skip_bad, counted), rendered in parallel, split train/validation by conversation as `prepare`
// splits documents, and written as shards with their loss masks.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "data/chat.h"

namespace anetrain {

ChatPrepareSummary prepare_chat(const std::vector<std::string>& inputs, const Tokenizer& tok,
                                const PrepareOptions& opt, const ChatPrepareOptions& chat) {
  if (opt.format != "anetrain" && opt.format != "llama2c")
    fail("prepare: --format must be anetrain or llama2c, got " + opt.format);
  if (opt.format == "llama2c" && tok.vocab_size() > 65536)
    fail("prepare: a vocabulary of " + std::to_string(tok.vocab_size()) +
         " does not fit llama2c's uint16 shards\nhint: use --format anetrain (4-byte ids)");
  ChatPrepareSummary sum;
  std::vector<Conversation> convs;
  for (const auto& path : inputs) {
    for (Conversation& c : read_conversations(path, chat.skip_bad, sum.skipped, sum.skip_notes)) {
      try {
        check_renderable(c, chat.chat_template, tok);
      } catch (const Error& e) {
        if (!chat.skip_bad) fail(c.source + ": " + e.what() + "\nhint: --skip-bad skips such lines and counts them");
        ++sum.skipped;
        sum.skip_notes.push_back(c.source + ": " + e.what());
        continue;
      }
      convs.push_back(std::move(c));
    }
  }
  if (convs.empty())
    fail("prepare --chat: no usable conversation in the input" +
         (sum.skipped ? " (" + std::to_string(sum.skipped) + " line(s) skipped)" : std::string()));

  // One contiguous range per thread, concatenated in input order: the shards do not depend on
  // the thread count.
  std::vector<std::vector<int32_t>> ids(convs.size());
  std::vector<std::vector<uint8_t>> masks(convs.size());
  const unsigned threads = opt.threads > 0 ? unsigned(opt.threads) : std::max(1u, std::thread::hardware_concurrency());
  std::atomic<bool> failed{false};
  std::string error;
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      const size_t lo = convs.size() * t / threads, hi = convs.size() * (t + 1) / threads;
      size_t i = lo;
      try {
        for (; i < hi && !failed; ++i)
          render_conversation(convs[i], chat.chat_template, tok, chat.train_on_prompt, ids[i], masks[i]);
      } catch (const std::exception& e) {
        if (!failed.exchange(true)) error = convs[i].source + ": " + e.what();
      }
    });
  for (auto& th : pool) th.join();
  if (failed) fail("prepare --chat: " + error);

  const int every = opt.val_frac > 0 ? std::max(2, int(std::lround(1.0 / opt.val_frac))) : 0;
  std::vector<uint32_t> train, val;
  std::vector<uint8_t> train_mask, val_mask;
  for (size_t i = 0; i < convs.size(); ++i) {
    const bool to_val = every && i % size_t(every) == size_t(every - 1);
    auto& dst = to_val ? val : train;
    auto& dst_mask = to_val ? val_mask : train_mask;
    for (int32_t id : ids[i]) dst.push_back(uint32_t(id));
    dst_mask.insert(dst_mask.end(), masks[i].begin(), masks[i].end());
    for (uint8_t m : masks[i]) sum.counted_tokens += m;
    for (const ChatMessage& m : convs[i].messages) sum.shards.bytes += m.text.size();
  }
  sum.shards.documents = convs.size();
  sum.shards.train_tokens = train.size();
  sum.shards.val_tokens = val.size();
  std::filesystem::create_directories(opt.out_dir);
  sum.shards.train_shards = write_shards(train, &train_mask, "train", tok, opt);
  sum.shards.val_shards = write_shards(val, &val_mask, "val", tok, opt);
  return sum;
}

}  // namespace anetrain
