// One tokenizer interface over three implementations:
//   llama2.c tokenizer.bin        — SentencePiece-style BPE by merge score (sp_bpe.cpp)
//   HF tokenizer.json, SP style   — Llama/Mistral: ▁ normalizer, byte fallback, ranked merges
//   HF tokenizer.json, byte-level — Qwen3/GPT-2: regex pre-split, byte↔unicode map, NFC, added tokens
// Ids are int32; special tokens are ordinary ids with a flag.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anetrain {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string kind() const = 0;  // "llama2c", "hf-sentencepiece", "hf-bytelevel"
  virtual int vocab_size() const = 0;
  // text → ids; BOS/EOS added only when asked and when the tokenizer has them.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos = false, bool add_eos = false) const = 0;
  // ids → text; decode(encode(x)) == x for valid UTF-8 x. What a special token renders as follows
  // the reference implementation of each format (sentencepiece: BOS/EOS as nothing; HF: the token text).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // Streaming decode of one id given the previous one (for generation): the bytes it adds.
  virtual std::string decode_step(int32_t prev, int32_t id) const = 0;
  virtual std::string piece(int32_t id) const = 0;  // the vocabulary entry as stored
  virtual std::optional<int32_t> piece_id(std::string_view piece) const = 0;
  virtual int32_t bos_id() const = 0;  // −1 when none
  virtual int32_t eos_id() const = 0;
  virtual bool is_special(int32_t id) const = 0;
  // A stable 64-bit hash of the vocabulary and merge rules: stored in shards so data is never
  // trained with a tokenizer it was not made with.
  virtual uint64_t fingerprint() const = 0;
};

// Loading one from a file, whichever format it is in: load_tokenizer (formats/load.h).

}  // namespace anetrain
