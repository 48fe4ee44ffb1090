// Token ids given on the command line's --tokens FILE: whitespace-separated decimal text, or
// raw little-endian uint16 (llama2.c's pretokenized format).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace anetrain {

struct TokenList {
  std::string path;
  std::vector<int32_t> ids;
  std::vector<uint64_t> offsets;  // byte offset of each id in the file, for error messages
  // Throws "path: at byte N: token id X is outside the vocabulary of V" for the first bad id.
  void check_vocab(int vocab_size) const;
};

TokenList read_token_list(const std::string& path, bool u16);

// Splits `ids` into rows of T+1 tokens: inputs are a row's first T, targets its last T.
// B and T may be 0 ("infer"); throws with a clear message when the count does not fit.
struct BatchShape {
  int B, T;
};
BatchShape infer_batch_shape(size_t n_ids, int B, int T, const std::string& path);

// A loss mask for `tokens` in the same form (one 0/1 per id), as rows: mask[b*T+t] is the value
// given for target tokens[b*(T+1)+t+1]. Throws naming the file and byte for a value other than
// 0/1, or when the count differs from the tokens'.
std::vector<uint8_t> read_loss_mask_rows(const std::string& path, bool u16, const TokenList& tokens, BatchShape shape);

}  // namespace anetrain
