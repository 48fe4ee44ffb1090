// A value a MIL program takes or gives: its declared type (shape, fp16 or fp32) and its values
// in fp32 — an fp16 tensor only ever holds numbers an fp16 can represent (mil/fp16.h). The
// simulator computes on these, and every executor of programs (the simulator's and the
// hardware's, backends/ane/executor.h) takes and gives them, so the hardware path needs nothing
// of the simulator.
#pragma once
#include <memory>
#include <vector>

#include "mil/types.h"

namespace anetrain::mil {

struct Tensor {
  Type type;
  // Shared, so that a tensor passes between an executor and the simulator without a copy; a
  // copy of a Tensor shares its values.
  std::shared_ptr<std::vector<float>> data;

  static Tensor zeros(Type t) { return {t, std::make_shared<std::vector<float>>(size_t(t.numel()), 0.0f)}; }
  float* ptr() { return data->data(); }
  const float* ptr() const { return data->data(); }
  size_t numel() const { return data->size(); }
};

}  // namespace anetrain::mil
