#include "model/lora.h"

#include <vector>

#include "core/error.h"

namespace anetrain {

void merge_adapters(Model& m) {
  if (m.cfg.lora.rank <= 0) return;
  const double scale = m.cfg.lora.scale();
  const int r = m.cfg.lora.rank;
  for (const ParamSpec& a_spec : m.table.specs()) {
    if (a_spec.role != ParamRole::lora_a) continue;
    const ParamSpec* b_spec = nullptr;
    for (const ParamSpec& s : m.table.specs())
      if (s.role == ParamRole::lora_b && s.layer == a_spec.layer && s.adapts == a_spec.adapts) b_spec = &s;
    if (!b_spec) fail("internal: adapter " + a_spec.name + " has no B");
    const ParamSpec& w_spec = m.table.at(a_spec.adapts, a_spec.layer);
    const int64_t out = w_spec.shape[0], in = w_spec.shape[1];
    float* W = m.param(w_spec);
    const float* A = m.param(a_spec);   // (r, in)
    const float* Bt = m.param(*b_spec);  // (r, out)
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < out; ++o) {
      std::vector<double> row(size_t(in), 0.0);
      for (int k = 0; k < r; ++k) {
        const double b = double(Bt[size_t(k) * size_t(out) + size_t(o)]) * scale;
        const float* a = A + size_t(k) * size_t(in);
        for (int64_t i = 0; i < in; ++i) row[size_t(i)] += b * double(a[i]);
      }
      float* w = W + size_t(o) * size_t(in);
      for (int64_t i = 0; i < in; ++i) w[i] = float(double(w[i]) + row[size_t(i)]);
    }
  }
  m.drop_adapters();
}

}  // namespace anetrain
