#include "model/flops.h"

#include "model/params.h"

namespace anetrain {

FlopCount flops_per_token(const ModelConfig& c, int T) {
  const double D = c.dim, qd = c.q_dim(), kvd = c.kv_dim(), F = c.hidden_dim, V = c.vocab_size;
  const double per_layer = D * qd + 2 * D * kvd + qd * D + 3 * D * F;
  FlopCount f{};
  f.matmul_fwd = 2.0 * (c.n_layers * per_layer + V * D);
  f.attention_fwd = 2.0 * 2.0 * c.n_layers * qd * (double(T) + 1.0) / 2.0;
  return f;
}

double training_step_flops(const ParamTable& table, const ModelConfig& c, int T, double rows, double classifier_rows) {
  // Attention's products have no weights: a forward and a backward of twice its products.
  double f = 3.0 * flops_per_token(c, T).attention_fwd * rows;
  bool classifier_trains = false;
  for (const ParamSpec& s : table.specs()) {
    if (!s.is_matrix()) continue;
    const bool classifier = s.role == ParamRole::lm_head || (s.role == ParamRole::embedding && c.tied_embeddings);
    if (classifier) classifier_trains = s.trainable;
    if (classifier || s.role == ParamRole::embedding) continue;  // the embedding is a lookup
    const double forward = 2.0 * rows * double(s.shape[0]) * double(s.shape[1]);
    f += (s.trainable ? 3.0 : 2.0) * forward;  // forward, the input's gradient, the weight's if it trains
  }
  const double classifier = 2.0 * classifier_rows * double(c.vocab_size) * double(c.dim);
  return f + (classifier_trains ? 3.0 : 2.0) * classifier;
}

}  // namespace anetrain
