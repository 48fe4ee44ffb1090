// llama2.c tokenizer.bin: a SentencePiece BPE vocabulary flattened to (score, bytes) per id, with
// "▁" already turned into ' '. Encoding reproduces sentencepiece's BPE (Llama 2 settings: identity
// normalizer, dummy-prefix space, byte fallback) id for id; see sp_bpe_encode.cpp for the rules.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace anetrain {

class Llama2cTokenizer final : public Tokenizer {
 public:
  // Roles follow llama2.c, which hard-codes them: id 0 <unk>, 1 BOS, 2 EOS; "<0xNN>" pieces are
  // byte fallbacks wherever they sit. Everything else is a mergeable piece.
  Llama2cTokenizer(std::vector<std::string> pieces, std::vector<float> scores, int max_token_length);

  std::string kind() const override { return "llama2c"; }
  int vocab_size() const override { return int(pieces_.size()); }
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false, bool add_eos = false) const override;
  // As sentencepiece: BOS/EOS print nothing, <unk> prints " ⁇ ", the first non-control piece
  // loses its dummy-prefix space. Unlike it, byte pieces stay raw bytes rather than U+FFFD.
  // decode(encode(x)) == x unless x holds '▁' (comes back as ' ') or malformed UTF-8 (U+FFFD).
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::string decode_step(int32_t prev, int32_t id) const override;
  std::string piece(int32_t id) const override;
  std::optional<int32_t> piece_id(std::string_view piece) const override;
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  bool is_special(int32_t id) const override;
  uint64_t fingerprint() const override;

  float score(int32_t id) const {
    check_id(id);
    return scores_[size_t(id)];
  }
  int max_token_length() const { return max_token_length_; }

 private:
  enum class Role : uint8_t { normal, byte, unknown, control };
  struct Symbol;
  struct Candidate;

  // sentencepiece's normalisation for this model family: dummy prefix, '▁' read as a space,
  // malformed UTF-8 replaced byte by byte with U+FFFD.
  static std::string normalize(std::string_view text);
  void encode_chunk(std::string_view chunk, std::vector<Symbol>& syms, std::vector<Candidate>& heap,
                    std::vector<int32_t>& out) const;
  static uint64_t hash(std::string_view s);
  void insert_normal(std::string_view s, int32_t id);
  int32_t find_normal(std::string_view s) const;
  void check_id(int32_t id) const;
  // The text one id contributes to decoded output; `at_start` strips the dummy-prefix space.
  std::string_view surface(int32_t id, bool at_start, char* byte_buf) const;

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<Role> roles_;
  // Mergeable pieces by text. Open addressing with the hash's top bits kept in each slot, because
  // most lookups are for pairs that are not in the vocabulary and should fail without a string
  // compare; std::unordered_map spent half the encode time chasing nodes here.
  struct Slot {
    uint32_t tag;
    int32_t id;  // −1: empty
  };
  std::vector<Slot> normal_;
  uint64_t normal_mask_ = 0;
  std::unordered_map<std::string_view, int32_t> all_;     // every stored piece, for piece_id()
  std::array<int32_t, 256> byte_ids_{};
  std::array<int32_t, 128> ascii_ids_{};  // single-character pieces, skipping the hash for ASCII
  int32_t unk_ = -1, bos_ = -1, eos_ = -1;
  int max_token_length_ = 0;
  size_t longest_normal_ = 0;
  // True when no mergeable piece has a space after a non-space byte: merges then never cross the
  // start of a space run that follows text, so those chunks can be encoded independently.
  bool chunkable_ = false;
};

// vocab_size 0 reads entries until the end of the file; otherwise exactly that many must be there.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int vocab_size);

// Writes the llama2.c layout (int32 max_token_length, then per id: f32 score, int32 length, bytes)
// atomically. Pieces use ' ' where sentencepiece would write '▁'.
void write_llama2c_tokenizer(const std::string& path, const std::vector<std::string>& pieces,
                             const std::vector<float>& scores);

}  // namespace anetrain
