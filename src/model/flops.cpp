#include "model/flops.h"

namespace anetrain {

FlopCount flops_per_token(const ModelConfig& c, int T) {
  const double D = c.dim, qd = c.q_dim(), kvd = c.kv_dim(), F = c.hidden_dim, V = c.vocab_size;
  const double per_layer = D * qd + 2 * D * kvd + qd * D + 3 * D * F;
  FlopCount f{};
  f.matmul_fwd = 2.0 * (c.n_layers * per_layer + V * D);
  f.attention_fwd = 2.0 * 2.0 * c.n_layers * qd * (double(T) + 1.0) / 2.0;
  return f;
}

}  // namespace anetrain
