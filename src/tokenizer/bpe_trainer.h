// Trains a SentencePiece-style byte-fallback BPE tokenizer (the Llama 2 layout): ids 0–2 are
// <unk> <s> </s>, 3–258 the byte pieces <0x00>…<0xFF>, then the characters that cover the corpus,
// then one piece per learned merge (score −rank). Spaces are "▁" and every text gets a leading
// "▁" (dummy prefix), so words are learned with their leading space. The result is written as a
// Hugging Face tokenizer.json (SP-BPE style) and as a llama2.c tokenizer.bin — both describe the
// same vocabulary.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace anetrain {

struct BpeTrainOptions {
  int vocab_size = 4096;
  double character_coverage = 0.9995;  // rarer characters fall back to bytes
  int threads = 0;
  bool verbose = true;
};

struct BpeVocab {
  std::vector<std::string> pieces;  // with "▁" for space; byte pieces as "<0xNN>"
  std::vector<float> scores;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
};

// Reads UTF-8 text files (one document per line); errors name the file and byte offset of
// invalid UTF-8. Throws when vocab_size < 259 + 1 (the specials, bytes and at least one char).
BpeVocab train_bpe(const std::vector<std::string>& files, const BpeTrainOptions& opt);

void write_bpe_tokenizer_json(const BpeVocab& v, const std::string& path);
void write_bpe_tokenizer_bin(const BpeVocab& v, const std::string& path);

}  // namespace anetrain
