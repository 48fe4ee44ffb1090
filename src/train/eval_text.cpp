#include "train/eval_text.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "train/eval_scorer.h"

namespace anetrain {

namespace {
struct Window {
  size_t begin;
  int len;         // tokens
  int score_from;  // first window position whose token is scored
  bool bos;
};

std::vector<Window> plan_windows(size_t n, const PerplexityOptions& o) {
  std::vector<Window> w;
  const size_t ctx = size_t(o.ctx);
  const auto full = [&] { return o.max_chunks > 0 && int64_t(w.size()) >= o.max_chunks; };
  if (o.stride == 0) {
    if (n < ctx)
      fail("eval: the text has " + std::to_string(n) + " tokens, fewer than one chunk of --ctx " +
           std::to_string(o.ctx));
    for (size_t k = 0; k < n / ctx && !full(); ++k) w.push_back({k * ctx, o.ctx, o.ctx / 2 + 1, o.bos >= 0});
    return w;
  }
  if (o.stride < 1 || o.stride > o.ctx) fail("eval: --stride must be in [1, --ctx]");
  if (n < 2) fail("eval: the text has fewer than 2 tokens");
  size_t scored_to = 1;  // the first token is never a target
  for (size_t begin = 0; scored_to < n && !full(); begin += size_t(o.stride)) {
    const size_t end = std::min(n, begin + ctx);
    w.push_back({begin, int(end - begin), int(scored_to - begin), false});
    scored_to = end;
  }
  return w;
}
}  // namespace

PerplexityReport perplexity(Backend& be, Model& m, const TokenStream& s, const Tokenizer* tok,
                            const PerplexityOptions& o, const EvalProgress& progress) {
  if (o.ctx < 2) fail("eval: --ctx must be at least 2");
  if (!s.counts.empty() && s.counts.size() != s.ids.size()) fail("eval: the mask does not cover the tokens");
  const std::vector<Window> windows = plan_windows(s.ids.size(), o);
  const int n_windows = int(std::min<size_t>(windows.size(), 1 << 30));
  SequenceScorer scorer(be, m, o.ctx, o.rows > 0 ? std::min(o.rows, n_windows) : 0, n_windows);
  const int rows = scorer.rows();
  PerplexityReport r;
  r.stream_tokens = int64_t(s.ids.size());
  double nll = 0, nll2 = 0;
  std::vector<ScoredSequence> seqs(static_cast<size_t>(rows));
  std::vector<std::vector<size_t>> positions(static_cast<size_t>(rows));  // stream index of each scored target
  for (size_t first = 0; first < windows.size(); first += size_t(rows)) {
    const size_t count = std::min(windows.size() - first, size_t(rows));
    std::vector<const ScoredSequence*> batch;
    for (size_t i = 0; i < count; ++i) {
      const Window& w = windows[first + i];
      ScoredSequence& q = seqs[i];
      q.ids.assign(s.ids.begin() + std::ptrdiff_t(w.begin), s.ids.begin() + std::ptrdiff_t(w.begin) + w.len);
      if (w.bos) q.ids[0] = o.bos;
      q.scored.assign(size_t(w.len - 1), 0);
      positions[i].clear();
      for (int j = std::max(w.score_from, 1); j < w.len; ++j) {
        const size_t at = w.begin + size_t(j);
        if (!s.counts.empty() && !s.counts[at]) continue;
        q.scored[size_t(j - 1)] = 1;
        positions[i].push_back(at);
      }
      batch.push_back(&q);
    }
    const std::vector<std::vector<double>> losses = scorer.score(batch);
    for (size_t i = 0; i < count; ++i) {
      for (size_t k = 0; k < losses[i].size(); ++k) {
        const double v = losses[i][k];
        nll += v;
        nll2 += v * v;
        if (tok) {
          const size_t at = positions[i][k];
          r.bytes += int64_t(tok->decode_step(s.ids[at - 1], s.ids[at]).size());
        }
      }
      r.tokens += int64_t(losses[i].size());
    }
    r.chunks += int64_t(count);
    if (progress) progress(r.chunks, int64_t(windows.size()), r.tokens ? std::exp(nll / double(r.tokens)) : NAN);
  }
  if (r.tokens == 0) fail("eval: no token was scored (every one masked out)");
  const double n = double(r.tokens);
  r.nll = nll / n;
  r.perplexity = std::exp(r.nll);
  // llama.cpp's error bar: the standard error of the mean NLL, carried through exp.
  const double var = nll2 / n - r.nll * r.nll;
  r.perplexity_err = var > 0 && r.tokens > 1 ? std::sqrt(var / (n - 1)) * r.perplexity : 0;
  if (tok && r.bytes > 0) r.bits_per_byte = nll / std::log(2.0) / double(r.bytes);
  return r;
}

}  // namespace anetrain
