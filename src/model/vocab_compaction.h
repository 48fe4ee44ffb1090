// Vocabulary compaction (from the seed system): the classifier and softmax run only over the
// token ids that occur in the training data, which for a 32K or 152K vocabulary and a small
// corpus cuts the largest matmul several-fold. Weights and checkpoints stay full-vocabulary:
// classifier rows are gathered before the forward pass and their gradients scattered back.
// The loss is then the cross-entropy of the softmax restricted to the used ids — exactly the
// loss of a model whose vocabulary is that set.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace anetrain {

struct VocabCompaction {
  std::vector<int32_t> compact_to_full;  // sorted used ids
  std::vector<int32_t> full_to_compact;  // −1 for unused ids
  int size() const { return int(compact_to_full.size()); }
  static VocabCompaction from_used(const std::vector<uint8_t>& used);  // used[id] != 0
};

}  // namespace anetrain
