#include "model/vocab_compaction.h"

namespace anetrain {

VocabCompaction VocabCompaction::from_used(const std::vector<uint8_t>& used) {
  VocabCompaction c;
  c.full_to_compact.assign(used.size(), -1);
  for (size_t id = 0; id < used.size(); ++id)
    if (used[id]) {
      c.full_to_compact[id] = int32_t(c.compact_to_full.size());
      c.compact_to_full.push_back(int32_t(id));
    }
  return c;
}

}  // namespace anetrain
