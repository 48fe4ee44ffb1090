// Small pieces the ane backend's stage files share: fp16 inputs of the programs' [1, C, 1, W]
// shape.
#pragma once
#include "backends/ane/programs.h"
#include "mil/fp16.h"
#include "mil/tensor.h"

namespace anetrain::ane_io {

inline mil::Type f16(int C, int W) { return mil::Type::of(mil::ElemType::fp16, {1, C, 1, W}); }

inline mil::Tensor fresh_input(int C, int W) { return mil::Tensor::zeros(f16(C, W)); }

inline void to_fp16(mil::Tensor& t) { mil::round_to_fp16(t.ptr(), t.numel()); }

// Rounds columns [0, T) of every channel: the activations just written beside staged weights.
inline void activations_to_fp16(mil::Tensor& t, int T) {
  const int64_t C = t.type.shape[1], W = t.type.shape[3];
  for (int64_t c = 0; c < C; ++c) mil::round_to_fp16(t.ptr() + c * W, size_t(T));
}

}  // namespace anetrain::ane_io
