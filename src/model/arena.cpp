#include "model/arena.h"

namespace anetrain {

namespace {
// Slices are whole multiples of 64 bytes (a cache line, an AVX-512 vector) apart, so one that
// starts on a line does not share it with its neighbour.
constexpr size_t kAlignFloats = 16;
}  // namespace

void PlannedArena::plan(const std::function<void(const TakeFloats& take)>& carve) {
  size_t cursor = 0;
  float* base = nullptr;
  const TakeFloats take = [&](size_t n) -> float* {
    float* p = base ? base + cursor : nullptr;
    cursor += (n + kAlignFloats - 1) & ~(kAlignFloats - 1);
    return p;
  };
  carve(take);
  data_.assign(cursor + kAlignFloats, 0.0f);
  base = data_.data();
  cursor = 0;
  carve(take);
}

}  // namespace anetrain
