// Hugging Face tokenizer.json: byte-level BPE (Qwen3, GPT-2) and SentencePiece-style BPE
// (Llama, Mistral). load_hf_tokenizer is the entry point; the hf:: pieces below are shared by
// the hf_*.cpp files and declared here so the unit tests can check each stage on its own.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace anetrain {

// Reads tokenizer.json (and tokenizer_config.json beside it, when present, for BOS/EOS).
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path);

namespace hf {

// ---- Unicode (hf_unicode.cpp) ----
// Length of the valid code point at s[i] (> 0, stored in cp), or −k where k is the length of the
// maximal ill-formed prefix there, the unit Rust's from_utf8_lossy replaces with one U+FFFD.
int utf8_decode(std::string_view s, size_t i, char32_t& cp);
void utf8_append(std::string& out, char32_t cp);
size_t utf8_first_invalid(std::string_view s);  // std::string_view::npos when all valid
std::string utf8_lossy(std::string_view s);
std::string nfc(std::string_view s);  // s must be valid UTF-8

enum CharClass : uint8_t { kLetter = 1, kNumber = 2, kSpace = 4, kNewline = 8, kWord = 16 };
// \p{L}, \p{N}, \s (Unicode White_Space), [\r\n] and \w (as the regex engines HF uses see them).
uint8_t char_class(char32_t cp);

// GPT-2's byte-level alphabet: each byte gets a printable code point so pieces are plain text.
char32_t byte_to_char(uint8_t b);
int char_to_byte(char32_t cp);  // −1 outside the alphabet

// ---- pre-tokenizer regexes, hand-written matchers (hf_pretokenize.cpp) ----
enum class SplitRegex { kQwen, kLlama3, kGpt2 };
std::optional<SplitRegex> recognise_split_regex(std::string_view pattern);
// Appends the pieces of `text` (views into it); together they cover `text` exactly, in order.
void split_words(std::string_view text, SplitRegex re, std::vector<std::string_view>& out);

// ---- BPE model (hf_bpe.cpp) ----
struct SvHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PieceIndex = std::unordered_map<std::string, int32_t, SvHash, std::equal_to<>>;

struct Merge {
  int32_t left, right, merged;
};

class BpeModel {
 public:
  BpeModel();
  ~BpeModel();
  // Filled by the loader, then index() once.
  std::vector<std::string> pieces;  // id → piece as stored ("" for ids the vocab skips)
  PieceIndex ids;                   // piece → id (model vocab only)
  std::vector<Merge> merges;        // by rank
  bool byte_level = false, byte_fallback = false, fuse_unk = false, ignore_merges = false;
  int32_t unk_id = -1;
  void index();
  // Appends the ids of one pre-tokenized word: UTF-8 text (byte-level maps the bytes itself).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  // Text no pre-tokenizer split (SentencePiece style): one word to HF, cut into words here
  // only where index() proved no merge can cross (see metaspace_cuts_safe_).
  void encode_unsplit(std::string_view text, std::vector<int32_t>& out) const;

 private:
  struct MergeTable;
  struct Cache;
  void initial_symbols(std::string_view word, std::vector<int32_t>& syms) const;
  void apply_merges(std::vector<int32_t>& syms) const;
  std::unique_ptr<MergeTable> table_;
  std::unique_ptr<Cache> cache_;
  std::array<int32_t, 256> unit_ids_{};      // byte-level: byte → id; otherwise ASCII char → id
  std::array<int32_t, 256> fallback_ids_{};  // byte → <0xNN> id
  bool metaspace_cuts_safe_ = false;
};

// ---- what the loader extracts from the JSON (hf_load.cpp) ----
struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};
struct NormalizeStep {
  enum Op { kNfc, kPrepend, kReplace } op;
  std::string from, to;  // Prepend uses `to`
};
struct DecodeStep {
  enum Op { kByteLevel, kReplace, kByteFallback, kFuse, kStrip } op;
  std::string from, to;  // Replace; Strip strips `from` (one char)
  int start = 0, stop = 0;
};
struct Spec {
  std::string path;
  bool byte_level = false;
  std::vector<NormalizeStep> normalizer;
  std::vector<SplitRegex> splits;  // applied one after another
  std::vector<AddedToken> added;
  std::vector<DecodeStep> decoder;
  std::unique_ptr<BpeModel> bpe;
  int32_t bos_id = -1, eos_id = -1;
};
Spec parse_tokenizer_json(const std::string& path);
std::unique_ptr<Tokenizer> make_hf_tokenizer(Spec spec);  // hf_tokenizer.cpp

// ---- decoder chain (hf_decode.cpp) ----
// Runs the steps over the pieces. `raw` keeps partial UTF-8 as bytes (streaming) instead of
// replacing it with U+FFFD; `strip` false skips Strip steps (a stream's later tokens).
void replace_all(std::string& s, const std::string& from, const std::string& to);
std::string run_decoder(const std::vector<DecodeStep>& steps, std::vector<std::string> pieces,
                        bool raw, bool strip);

}  // namespace hf
}  // namespace anetrain
