// `anetrain prepare`: documents → token shards. Inputs are plain text (documents separated by
// blank lines, or one per line), JSON Lines (a "text"/"story"/"content" field, or a bare string
// per line) or a JSON array of such objects (TinyStories). Documents are tokenized in parallel,
// joined with BOS in front of each (or EOS after each when the tokenizer has no BOS, as Qwen3),
// and split into train/validation shards.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace anetrain {

struct PrepareOptions {
  std::string out_dir;
  std::string format = "anetrain";  // or "llama2c" (raw uint16)
  double val_frac = 0.05;           // every round(1/val_frac)-th document goes to validation
  bool doc_per_line = false;        // plain text: one document per line instead of per paragraph
  int threads = 0;
  uint64_t shard_tokens = 100'000'000;
  bool progress = true;
};

struct PrepareSummary {
  uint64_t documents = 0, train_tokens = 0, val_tokens = 0, bytes = 0;
  std::vector<std::string> train_shards, val_shards;
  double bytes_per_token() const { return double(bytes) / double(train_tokens + val_tokens); }
};

// Reads every document of one input file (format from its extension: .jsonl, .json, else text).
std::vector<std::string> read_documents(const std::string& path, bool doc_per_line);

// Writes `ids` as shards STEM_000.bin, STEM_001.bin, … of opt.shard_tokens under opt.out_dir in
// opt.format, each with its slice of `mask` beside it as a loss mask when one is given.
std::vector<std::string> write_shards(const std::vector<uint32_t>& ids, const std::vector<uint8_t>* mask,
                                      const std::string& stem, const Tokenizer& tok, const PrepareOptions& opt);

PrepareSummary prepare(const std::vector<std::string>& inputs, const Tokenizer& tok, const PrepareOptions& opt);

}  // namespace anetrain
