#include "model/transformer.h"

#include <string>

#include "core/error.h"

namespace anetrain {

namespace {
void check_tokens(const std::vector<int32_t>& ids, int V, const char* what) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= V)
      fail(std::string(what) + " token " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
           " is outside the vocabulary [0, " + std::to_string(V) + ")");
}
}  // namespace

double forward(Backend& be, Model& m, Workspace& ws) {
  const ModelConfig& c = m.cfg;
  const int N = ws.B * ws.T, D = c.dim, V = c.vocab_size;
  check_tokens(ws.inputs, V, "input");
  check_tokens(ws.targets, V, "target");
  be.embedding_fwd(ws.inputs.data(), m.w.embedding, ws.x[0], N, D);
  for (int l = 0; l < c.n_layers; ++l) {
    be.attention_block_fwd(ws.dims, m.w.layers[l], ws.x[l], ws.x_mid[l], ws.attn[l]);
    be.ffn_block_fwd(ws.dims, m.w.layers[l], ws.x_mid[l], ws.x[l + 1], ws.ffn[l]);
  }
  be.rmsnorm_fwd(ws.x[c.n_layers], m.w.final_norm, ws.xf, ws.final_rstd, N, D, float(c.norm_eps));
  be.linear_fwd(ws.xf, m.w.classifier, ws.logits, N, D, V);
  be.cross_entropy_fwd(ws.logits, ws.targets.data(), ws.losses, N, V);
  double sum = 0;
  for (int n = 0; n < N; ++n) sum += ws.losses[n];
  return sum / N;
}

void backward(Backend& be, Model& m, Workspace& ws, float grad_scale) {
  const ModelConfig& c = m.cfg;
  const int N = ws.B * ws.T, D = c.dim, V = c.vocab_size;
  be.cross_entropy_bwd(ws.logits, ws.targets.data(), grad_scale / float(N), ws.dlogits, N, V);
  be.linear_bwd_w(ws.dlogits, ws.xf, m.g.classifier, N, D, V);
  be.linear_bwd_x(ws.dlogits, m.w.classifier, ws.dxf, N, D, V, false);
  std::fill(ws.dx_a, ws.dx_a + size_t(N) * D, 0.0f);
  be.rmsnorm_bwd(ws.dxf, ws.x[c.n_layers], m.w.final_norm, ws.final_rstd, ws.dx_a, m.g.final_norm, N, D);
  float* dcur = ws.dx_a;  // gradient w.r.t. the stream after the current block
  float* dnext = ws.dx_b;
  for (int l = c.n_layers - 1; l >= 0; --l) {
    be.ffn_block_bwd(ws.dims, m.w.layers[l], m.g.layers[l], ws.x_mid[l], ws.ffn[l], dcur, dnext, ws.ffn_scratch);
    std::swap(dcur, dnext);
    be.attention_block_bwd(ws.dims, m.w.layers[l], m.g.layers[l], ws.x[l], ws.attn[l], dcur, dnext,
                           ws.attn_scratch);
    std::swap(dcur, dnext);
  }
  be.embedding_bwd(ws.inputs.data(), dcur, m.g.embedding, N, D);
}

}  // namespace anetrain
