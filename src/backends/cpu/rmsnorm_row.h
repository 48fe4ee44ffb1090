// One row of the cpu backend's RMSNorm forward: r = 1/√(mean(x²) + eps), y_i = w_i·(r·x_i), each
// y_i handed to `store(i, y_i)`. The op (rmsnorm.cpp), the pass that writes bf16 (ffn_block.cpp)
// and the fused decode layer all run this one loop, so their values agree bit for bit.
#pragma once
#include <cmath>

namespace anetrain {

template <class Store>
inline float rmsnorm_row(const float* x, const float* w, int D, float eps, Store store) {
  float ss = 0;
  for (int i = 0; i < D; ++i) ss += x[i] * x[i];
  const float r = 1.0f / std::sqrt(ss / float(D) + eps);
  for (int i = 0; i < D; ++i) store(i, w[i] * (r * x[i]));
  return r;
}

}  // namespace anetrain
