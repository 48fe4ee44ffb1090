// Log-likelihoods of chosen tokens given the tokens before them, through the training forward
// (any backend, any precision): the evaluation commands' one way to run a model. Sequences of up
// to T+1 tokens go B at a time into one Workspace planned once; shorter ones are padded, and only
// the targets a sequence marks are scored (the loss mask), so the classifier stage runs on those
// rows alone and the full B·T×V logits are never held.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "contract/backend.h"
#include "model/model.h"
#include "model/workspace.h"

namespace anetrain {

struct ScoredSequence {
  std::vector<int32_t> ids;     // the tokens; ids[0] is context only
  std::vector<uint8_t> scored;  // ids.size() − 1 flags: whether predicting ids[j + 1] counts
};

class SequenceScorer {
 public:
  // rows = 0: as many sequences per forward as a workspace of about `budget_bytes` holds, at
  // least 1 and at most max_rows (no more than there are sequences to score).
  SequenceScorer(Backend& be, Model& m, int T, int rows, int max_rows, size_t budget_bytes = size_t(1) << 30);
  int rows() const { return ws_->B; }
  int seq() const { return ws_->T; }
  // For each sequence (at most rows() of them), the negative log-likelihood in nats of each
  // scored target, in order.
  std::vector<std::vector<double>> score(const std::vector<const ScoredSequence*>& batch);

 private:
  Backend& be_;
  Model& m_;
  std::unique_ptr<Workspace> ws_;
};

}  // namespace anetrain
