#include "model/model.h"

#include <atomic>

#include <algorithm>
#include <cmath>

#include "core/rng.h"

namespace anetrain {

Model::Model(const ModelConfig& c) : cfg(c), table(c), params(table.total(), 0.0f) {
  w = bind_tensors(table, cfg, params.data());
  touch();
}

void Model::ensure_grads() {
  if (grads.size() == params.size()) return;
  grads.assign(params.size(), 0.0f);
  g = bind_tensors(table, cfg, grads.data());
}

void Model::touch() {
  static std::atomic<uint64_t> next{1};
  version = next++;
}

void Model::zero_grads() {
  ensure_grads();
  if (!grads_zero) std::fill(grads.begin(), grads.end(), 0.0f);
  grads_zero = false;  // whatever follows writes them; only the optimizer's pass vouches again
}

void init_random(Model& m, uint64_t seed) {
  Rng rng(seed);
  const double res = 1.0 / std::sqrt(2.0 * m.cfg.n_layers);
  for (const auto& s : m.table.specs()) {
    float* p = m.param(s);
    if (!s.is_matrix()) {
      std::fill(p, p + s.numel(), 1.0f);
      continue;
    }
    double a = 1.0 / std::sqrt(double(s.shape[1]));
    if (s.role == ParamRole::embedding) a = 0.02;
    if (s.role == ParamRole::wo || s.role == ParamRole::w_down) a *= res;
    for (size_t i = 0; i < s.numel(); ++i) p[i] = float((2.0 * rng.uniform() - 1.0) * a);
  }
  m.touch();
}

}  // namespace anetrain
