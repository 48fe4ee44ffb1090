// Perplexity of a token stream, by llama.cpp's `llama-perplexity` protocol or a sliding window.
//   chunks (stride 0): non-overlapping windows of ctx tokens from the stream's start; each
//     window's first token replaced by BOS (when one is known); only targets at window
//     positions ctx/2 + 1 … ctx − 1 scored (ctx − ctx/2 − 1 per window). A tail shorter than
//     ctx is not evaluated.
//   stride S: windows of up to ctx tokens starting at 0, S, 2S, …; the first scores every
//     target it holds, each later one only the targets past the previous window's end (its last
//     S), so every token after the first is scored once, with ctx − S or more tokens before it;
//     tokens as they are (no BOS replaced). The last window ends at the stream's end.
// A token whose mask byte is 0 (chat shards) is never scored.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "contract/backend.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace anetrain {

struct TokenStream {
  std::vector<int32_t> ids;
  std::vector<uint8_t> counts;  // empty, or one per token: whether predicting it may count
};

struct PerplexityOptions {
  int ctx = 512;
  int stride = 0;          // 0: llama.cpp's chunks; else the sliding window
  int64_t max_chunks = 0;  // 0: all
  int rows = 0;            // windows per forward; 0: as many as fit the scorer's budget
  int32_t bos = -1;        // written over each chunk's first token; −1: none
};

struct PerplexityReport {
  double perplexity = 0, perplexity_err = 0;  // exp(mean NLL) and llama.cpp's ± (one standard error)
  double nll = 0;                             // mean NLL in nats per scored token
  double bits_per_byte = -1;                  // −1 without a tokenizer
  int64_t tokens = 0;                         // scored
  int64_t bytes = 0;                          // UTF-8 bytes of the scored tokens' text
  int64_t chunks = 0;                         // windows evaluated
  int64_t stream_tokens = 0;
};

// Called after each forward: windows done, windows in all, perplexity so far.
using EvalProgress = std::function<void(int64_t done, int64_t total, double ppl)>;

// `tok` (may be null) gives each scored token's bytes for bits per byte.
PerplexityReport perplexity(Backend& be, Model& m, const TokenStream& stream, const Tokenizer* tok,
                            const PerplexityOptions& o, const EvalProgress& progress = {});

}  // namespace anetrain
