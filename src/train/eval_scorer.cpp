#include "train/eval_scorer.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "model/transformer.h"

namespace anetrain {

namespace {
std::unique_ptr<Workspace> plan(Backend& be, const ModelConfig& c, int B, int T) {
  return std::make_unique<Workspace>(c, B, T, nullptr, /*keep_logits=*/false, flash_attention_for(be, c, B, T));
}
}  // namespace

SequenceScorer::SequenceScorer(Backend& be, Model& m, int T, int rows, int max_rows, size_t budget_bytes)
    : be_(be), m_(m) {
  if (T < 1) fail("eval: a sequence needs at least 2 tokens");
  if (T > m.cfg.max_seq_len)
    fail("eval: " + std::to_string(T) + " positions exceed the model's max_seq_len " +
         std::to_string(m.cfg.max_seq_len));
  if (rows <= 0) {
    // One row's workspace measured, not estimated: activations grow linearly with B.
    ws_ = plan(be, m.cfg, 1, T);
    const size_t row_bytes = std::max<size_t>(1, ws_->floats() * sizeof(float));
    rows = int(std::clamp<size_t>(budget_bytes / row_bytes, 1, size_t(std::clamp(max_rows, 1, 64))));
    if (rows == 1) return;
  }
  ws_ = plan(be, m.cfg, rows, T);
}

std::vector<std::vector<double>> SequenceScorer::score(const std::vector<const ScoredSequence*>& batch) {
  Workspace& ws = *ws_;
  const int B = ws.B, T = ws.T;
  if (int(batch.size()) > B) fail("eval: more sequences than the scorer's rows");
  ws.loss_mask.assign(size_t(B) * T, 0);
  std::fill(ws.inputs.begin(), ws.inputs.end(), 0);
  std::fill(ws.targets.begin(), ws.targets.end(), 0);
  for (size_t b = 0; b < batch.size(); ++b) {
    const ScoredSequence& s = *batch[b];
    const int n = int(s.ids.size()) - 1;  // targets
    if (n > T || s.scored.size() != size_t(std::max(n, 0)))
      fail("eval: a sequence of " + std::to_string(s.ids.size()) + " tokens does not fit " + std::to_string(T) +
           " positions");
    for (int t = 0; t < n; ++t) {
      const size_t row = b * size_t(T) + size_t(t);
      ws.inputs[row] = s.ids[size_t(t)];
      ws.targets[row] = s.ids[size_t(t) + 1];
      ws.loss_mask[row] = s.scored[size_t(t)] ? 1 : 0;
    }
  }
  forward(be_, m_, ws);
  // With a mask the classifier wrote the kept rows' losses first, in row order.
  std::vector<std::vector<double>> out(batch.size());
  for (size_t i = 0; i < ws.kept_rows.size(); ++i) out[size_t(ws.kept_rows[i] / T)].push_back(double(ws.losses[i]));
  return out;
}

}  // namespace anetrain
