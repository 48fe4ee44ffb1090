// Small programs of the runtime tests' own, so that those tests do not hang on the training
// kernels' layouts: x·w (+ sigmoid) over one fp16 input [1, 32, 1, 32] and a weight blob.
#pragma once
#include <string>
#include <vector>

#include "backends/ane/programs.h"

namespace anetrain::ane::test_programs {

inline KernelProgram scaled(const std::string& name, bool with_sigmoid) {
  KernelProgram k;
  mil::Builder b;
  const mil::Shape shape = {1, 32, 1, 32};
  std::vector<float> w(32 * 32);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.25f + float(i % 7) / 8;
  mil::Var x = b.input("x", mil::Type::of(mil::ElemType::fp16, shape));
  mil::Var y = b.mul(x, add_fp16_blob(b, k, "scale", shape, w), "scaled");
  k.name = name;
  k.program = b.finish({with_sigmoid ? b.sigmoid(y, "y") : y});
  return k;
}

}  // namespace anetrain::ane::test_programs
