#include "model/workspace.h"

#include "contract/backend.h"
#include "core/error.h"

namespace anetrain {

const char* recompute_name(Recompute r) {
  switch (r) {
    case Recompute::attention: return "attention";
    case Recompute::blocks: return "blocks";
    case Recompute::none: break;
  }
  return "none";
}

Recompute parse_recompute(const std::string& name, const std::string& what) {
  for (Recompute r : {Recompute::none, Recompute::attention, Recompute::blocks})
    if (name == recompute_name(r)) return r;
  fail(what + " must be none, attention or blocks, got '" + name + "'");
}

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
                     bool flash, Recompute rc)
    : B(B_),
      T(T_),
      dims(block_dims(c, B_, T_)),
      recompute(rc),
      compaction(vc),
      logit_width(vc ? vc->size() : c.vocab_size) {
  const size_t N = size_t(B) * T, D = c.dim, V = size_t(logit_width);
  const int L = c.n_layers;
  // Blocks whose activations the backward recomputes keep one layer's worth, shared by all layers.
  const int attn_slots = rc == Recompute::none ? L : 1, ffn_slots = rc == Recompute::blocks ? 1 : L;
  inputs.assign(N, 0);
  targets.assign(N, 0);
  logit_targets.assign(N, 0);

  arena_.plan([&](const TakeFloats& take) {
    x.assign(L + 1, nullptr);
    x_mid.assign(size_t(ffn_slots), nullptr);
    attn.assign(size_t(attn_slots), AttentionSaved{});
    ffn.assign(size_t(ffn_slots), FfnSaved{});
    for (int l = 0; l <= L; ++l) x[l] = take(N * D);
    for (int l = 0; l < L; ++l) {
      if (l < ffn_slots) x_mid[l] = take(N * D);
      if (l < attn_slots) attn[l] = plan_attention_saved(take, dims, true, flash);
      if (l < ffn_slots) ffn[l] = plan_ffn_saved(take, dims);
    }
    recomputed_out = rc == Recompute::none ? nullptr : take(N * D);
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
