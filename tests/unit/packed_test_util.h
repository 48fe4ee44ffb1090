// A packed matrix (kernels/packed.h) that owns its storage, made from fp32 values, for the tests
// of the packed products and of the decode stage.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "contract/packed.h"

namespace anetrain::test {

// n values from N(0, sd²), the same for the same seed.
inline std::vector<float> normal_values(size_t n, uint32_t seed, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

struct PackedMatrix {
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  std::vector<int8_t> q;
  std::vector<float> scales;
  MatrixRef ref;
  PackedMatrix(const std::vector<float>& w, int rows, int cols, WeightFormat f, int group) : f32(w) {
    ref = {f, nullptr, nullptr, rows, cols, 0};
    if (f == WeightFormat::f32) ref.data = f32.data();
    if (f == WeightFormat::bf16) {
      for (float v : w) bf16.push_back(f32_to_bf16(v));
      ref.data = bf16.data();
    }
    if (f == WeightFormat::q8_0) {
      q.resize(w.size());
      scales.resize(w.size() / size_t(group));
      quantize_q8_0(w.data(), w.size(), group, q.data(), scales.data());
      ref.data = q.data();
      ref.scales = scales.data();
      ref.group = group;
    }
  }
};

}  // namespace anetrain::test
