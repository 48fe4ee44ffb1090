// One zeroed allocation carved into slices by a plan that runs twice: first only measuring what
// it takes, then handing out pointers into the allocation made to that measure. Training's
// Workspace and the decoder's buffers are planned this way, so neither allocates while it runs.
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include "contract/stages.h"

namespace anetrain {

class PlannedArena {
 public:
  // `carve` takes every buffer it needs with take(n) and stores the pointers where it likes.
  // In the measuring pass take() returns nullptr, so `carve` must not write through them.
  // Replaces whatever an earlier plan held.
  void plan(const std::function<void(const TakeFloats& take)>& carve);
  size_t floats() const { return data_.size(); }

 private:
  std::vector<float> data_;
};

}  // namespace anetrain
