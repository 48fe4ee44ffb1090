#include "model/workspace.h"

#include "contract/backend.h"

namespace anetrain {

bool flash_attention_for(const Backend& be, const ModelConfig& c, int B, int T) {
  return be.attention_flash(AttnShape{B, T, c.n_heads, c.n_kv_heads, c.head_dim});
}

int64_t Workspace::counted_rows() const {
  if (loss_mask.empty()) return int64_t(B) * T;
  int64_t n = 0;
  for (uint8_t v : loss_mask) n += v != 0;
  return n;
}

Workspace::Workspace(const ModelConfig& c, int B_, int T_, const VocabCompaction* vc, bool keep_logits,
                     bool flash)
    : B(B_), T(T_), dims(block_dims(c, B_, T_)), compaction(vc), logit_width(vc ? vc->size() : c.vocab_size) {
  const size_t N = size_t(B) * T, D = c.dim, V = size_t(logit_width);
  const int L = c.n_layers;
  inputs.assign(N, 0);
  targets.assign(N, 0);
  logit_targets.assign(N, 0);

  arena_.plan([&](const TakeFloats& take) {
    x.assign(L + 1, nullptr);
    x_mid.assign(L, nullptr);
    attn.assign(L, AttentionSaved{});
    ffn.assign(L, FfnSaved{});
    for (int l = 0; l <= L; ++l) x[l] = take(N * D);
    for (int l = 0; l < L; ++l) {
      x_mid[l] = take(N * D);
      attn[l] = plan_attention_saved(take, dims, true, flash);
      ffn[l] = plan_ffn_saved(take, dims);
    }
    attn_scratch = plan_attention_scratch(take, dims, flash);
    ffn_scratch = plan_ffn_scratch(take, dims);
    xf = take(N * D);
    final_rstd = take(N);
    cls_w = vc ? take(V * D) : nullptr;
    cls_g = vc ? take(V * D) : nullptr;
    logits = keep_logits ? take(N * V) : nullptr;
    dlogits = keep_logits ? take(N * V) : nullptr;
    losses = take(N);
    lse = take(N);
    dxf = take(N * D);
    dx_a = take(N * D);
    dx_b = take(N * D);
  });
}

}  // namespace anetrain
