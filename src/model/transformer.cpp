#include "model/transformer.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "core/error.h"
#include "model/held_classifier.h"

namespace anetrain {

namespace {
void check_tokens(const std::vector<int32_t>& ids, int V, const char* what) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= V)
      fail(std::string(what) + " token " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
           " is outside the vocabulary [0, " + std::to_string(V) + ")");
}
// --act-clip: clamp(x, −c, c). Its gradient passes where |x| < c and is zero where it clamped;
// a clamped value is stored exactly as ±c, which is how backward recognises it.
void clamp_stream(float* x, size_t n, float c) {
  if (c <= 0) return;
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) x[i] = std::min(c, std::max(-c, x[i]));
}
void mask_clamped(float* dx, const float* x, size_t n, float c) {
  if (c <= 0) return;
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i)
    if (x[i] >= c || x[i] <= -c) dx[i] = 0.0f;
}

// The compacted classifier's gradient rows back into the full classifier's gradient.
void scatter_compacted(const VocabCompaction& vc, const float* cls_g, float* g_classifier, int D) {
  for (int r = 0; r < vc.size(); ++r) {
    float* dst = g_classifier + size_t(vc.compact_to_full[r]) * D;
    const float* src = cls_g + size_t(r) * D;
    for (int i = 0; i < D; ++i) dst[i] += src[i];
  }
}

// With a loss mask: the rows that count, their final-normed stream and targets gathered so the
// classifier stage runs on them alone (the kernel contract is unchanged; it sees M rows).
void gather_counted_rows(Workspace& ws, int N, int D) {
  if (ws.loss_mask.size() != size_t(N))
    fail("loss mask holds " + std::to_string(ws.loss_mask.size()) + " rows, the batch " + std::to_string(N));
  if (ws.kept_xf.size() < size_t(N) * D) {  // first masked batch only
    ws.kept_rows.reserve(size_t(N));
    ws.kept_targets.resize(size_t(N));
    ws.kept_xf.resize(size_t(N) * D);
    ws.kept_dxf.resize(size_t(N) * D);
  }
  ws.kept_rows.clear();
  for (int n = 0; n < N; ++n)
    if (ws.loss_mask[size_t(n)]) ws.kept_rows.push_back(n);
  for (size_t i = 0; i < ws.kept_rows.size(); ++i) {
    const int n = ws.kept_rows[i];
    ws.kept_targets[i] = ws.logit_targets[size_t(n)];
    std::memcpy(ws.kept_xf.data() + i * D, ws.xf + size_t(n) * D, sizeof(float) * D);
  }
}

// The gathered rows' stream gradient back in place; rows that do not count get zero.
void scatter_counted_rows(Workspace& ws, int N, int D) {
  std::fill(ws.dxf, ws.dxf + size_t(N) * D, 0.0f);
  for (size_t i = 0; i < ws.kept_rows.size(); ++i)
    std::memcpy(ws.dxf + size_t(ws.kept_rows[i]) * D, ws.kept_dxf.data() + i * D, sizeof(float) * D);
}

void zero_uncounted_rows(float* dlogits, const std::vector<uint8_t>& mask, int W) {
  for (size_t n = 0; n < mask.size(); ++n)
    if (!mask[n]) std::fill(dlogits + n * W, dlogits + (n + 1) * W, 0.0f);
}

// --recompute: layer d.layer's forward again, from its kept input into the one slot of saved
// activations its backward reads — the stage calls of forward() on the same values, so the same
// bits. The output duplicates the kept stream and goes to a discard buffer. The last layer's
// activations are still in the slot, as forward() left them.
void recompute_layer(Backend& be, Model& m, Workspace& ws, const BlockDims& d) {
  const int l = d.layer;
  if (ws.recompute == Recompute::none || l == m.cfg.n_layers - 1) return;
  const bool whole_layer = ws.recompute == Recompute::blocks;
  float* attn_out = whole_layer ? ws.x_mid_of(l) : ws.recomputed_out;
  be.attention_block_fwd(d, m.w.layers[l], ws.x[l], attn_out, ws.attn_of(l));
  if (!whole_layer) return;
  clamp_stream(attn_out, size_t(d.N()) * d.D, ws.act_clip);
  be.ffn_block_fwd(d, m.w.layers[l], attn_out, ws.recomputed_out, ws.ffn_of(l));
}

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

}  // namespace

double forward(Backend& be, Model& m, Workspace& ws) {
  const ModelConfig& c = m.cfg;
  const int N = ws.B * ws.T, D = c.dim, V = c.vocab_size;
  check_tokens(ws.inputs, V, "input");
  check_tokens(ws.targets, V, "target");
  be.sync_weights({m.params.data(), m.params.size(), m.version});
  if (m.w.embedding) {
    be.embedding_fwd(ws.inputs.data(), m.w.embedding, ws.x[0], N, D);
  } else {  // held: the batch's rows alone, straight from the store (a gather, as embedding_fwd is)
    const ParamSpec& e = m.table.at(ParamRole::embedding);
    for (int n = 0; n < N; ++n) m.read_rows(e, size_t(ws.inputs[n]), 1, ws.x[0] + size_t(n) * D);
  }
  for (int l = 0; l < c.n_layers; ++l) {
    BlockDims d = ws.dims;
    d.layer = l;
    m.bring_layer(l);
    be.attention_block_fwd(d, m.w.layers[l], ws.x[l], ws.x_mid_of(l), ws.attn_of(l));
    clamp_stream(ws.x_mid_of(l), size_t(N) * D, ws.act_clip);
    be.ffn_block_fwd(d, m.w.layers[l], ws.x_mid_of(l), ws.x[l + 1], ws.ffn_of(l));
    clamp_stream(ws.x[l + 1], size_t(N) * D, ws.act_clip);
  }
  const auto t_cls = Clock::now();
  be.rmsnorm_fwd(ws.x[c.n_layers], m.w.final_norm, ws.xf, ws.final_rstd, N, D, float(c.norm_eps));
  const float* cls = m.w.classifier;
  if (ws.compaction) {
    const VocabCompaction& vc = *ws.compaction;
    for (int n = 0; n < N; ++n) {
      ws.logit_targets[n] = vc.full_to_compact[ws.targets[n]];
      if (ws.logit_targets[n] < 0)
        fail("target token " + std::to_string(ws.targets[n]) + " is outside the compacted vocabulary");
    }
    const ParamSpec& cs = m.classifier_spec();
    for (int r = 0; r < vc.size(); ++r) m.read_rows(cs, size_t(vc.compact_to_full[r]), 1, ws.cls_w + size_t(r) * D);
    cls = ws.cls_w;
  } else {
    std::copy(ws.targets.begin(), ws.targets.end(), ws.logit_targets.begin());
  }
  const int W = ws.logit_width;
  if (!cls) {  // held in bf16 / Q8_0: read a vocabulary chunk at a time (held_classifier.h)
    const bool masked = !ws.loss_mask.empty();
    if (masked) gather_counted_rows(ws, N, D);
    const int M = masked ? int(ws.kept_rows.size()) : N;
    held_classifier_fwd(be, m, masked ? ws.kept_xf.data() : ws.xf,
                        masked ? ws.kept_targets.data() : ws.logit_targets.data(), ws.losses, ws.lse, M);
    ws.classifier_ms += ms_since(t_cls);
    double sum = 0;
    for (int i = 0; i < M; ++i) sum += ws.losses[i];
    return M > 0 ? sum / M : 0.0;
  }
  if (!ws.loss_mask.empty()) {
    gather_counted_rows(ws, N, D);
    const int M = int(ws.kept_rows.size());
    double sum = 0;
    if (ws.logits) {
      be.linear_fwd(ws.xf, cls, ws.logits, N, D, W);
      be.cross_entropy_fwd(ws.logits, ws.logit_targets.data(), ws.losses, N, W);
      for (int n : ws.kept_rows) sum += ws.losses[n];
    } else if (M > 0) {
      const size_t need = be.classifier_scratch_floats(M, W);
      if (ws.classifier_scratch.size() < need) ws.classifier_scratch.resize(need);
      be.classifier_loss_fwd(ws.kept_xf.data(), cls, ws.kept_targets.data(), ws.losses, ws.lse,
                             ws.classifier_scratch.data(), M, D, W);
      for (int i = 0; i < M; ++i) sum += ws.losses[i];
    }
    ws.classifier_ms += ms_since(t_cls);
    return M > 0 ? sum / M : 0.0;  // no row counts: this batch contributes nothing
  }
  if (ws.logits) {
    be.linear_fwd(ws.xf, cls, ws.logits, N, D, W);
    be.cross_entropy_fwd(ws.logits, ws.logit_targets.data(), ws.losses, N, W);
  } else {
    const size_t need = be.classifier_scratch_floats(N, W);
    if (ws.classifier_scratch.size() < need) ws.classifier_scratch.resize(need);  // first step only
    be.classifier_loss_fwd(ws.xf, cls, ws.logit_targets.data(), ws.losses, ws.lse, ws.classifier_scratch.data(), N, D,
                           W);
  }
  ws.classifier_ms += ms_since(t_cls);
  double sum = 0;
  for (int n = 0; n < N; ++n) sum += ws.losses[n];
  return sum / N;
}

void backward(Backend& be, Model& m, Workspace& ws, float grad_scale, const GradsFinal& on_final) {
  m.ensure_grads();
  m.grads_zero = false;
  be.sync_weights({m.params.data(), m.params.size(), m.version});
  const ModelConfig& c = m.cfg;
  const int N = ws.B * ws.T, D = c.dim, W = ws.logit_width;
  const auto t_cls = Clock::now();
  // A frozen classifier (null gradient) still passes the gradient on to the stream.
  const bool cls_trains = m.g.classifier != nullptr;
  // With a loss mask each counted row's loss weighs 1/M (M rows count), the others nothing.
  const bool masked = !ws.loss_mask.empty();
  const int M = masked ? int(ws.kept_rows.size()) : N;
  const float row_scale = grad_scale / float(M);
  if (masked && M == 0) {
    std::fill(ws.dxf, ws.dxf + size_t(N) * D, 0.0f);
  } else if (!m.w.classifier && !ws.compaction) {  // held: forward's chunks again
    held_classifier_bwd(be, m, masked ? ws.kept_xf.data() : ws.xf,
                        masked ? ws.kept_targets.data() : ws.logit_targets.data(), ws.lse, row_scale,
                        masked ? ws.kept_dxf.data() : ws.dxf, M);
    if (masked) scatter_counted_rows(ws, N, D);
  } else if (!ws.logits) {
    float* dW = m.g.classifier;
    if (ws.compaction && cls_trains) {
      std::fill(ws.cls_g, ws.cls_g + size_t(W) * D, 0.0f);
      dW = ws.cls_g;
    }
    be.classifier_loss_bwd(masked ? ws.kept_xf.data() : ws.xf, ws.compaction ? ws.cls_w : m.w.classifier,
                           masked ? ws.kept_targets.data() : ws.logit_targets.data(), ws.lse, row_scale,
                           masked ? ws.kept_dxf.data() : ws.dxf, dW, ws.classifier_scratch.data(), M, D, W);
    if (ws.compaction && cls_trains) scatter_compacted(*ws.compaction, ws.cls_g, m.g.classifier, D);
    if (masked) scatter_counted_rows(ws, N, D);
  } else if (ws.compaction) {
    be.cross_entropy_bwd(ws.logits, ws.logit_targets.data(), row_scale, ws.dlogits, N, W);
    if (masked) zero_uncounted_rows(ws.dlogits, ws.loss_mask, W);
    const VocabCompaction& vc = *ws.compaction;
    if (cls_trains) {
      std::fill(ws.cls_g, ws.cls_g + size_t(W) * D, 0.0f);
      be.linear_bwd_w(ws.dlogits, ws.xf, ws.cls_g, N, D, W);
    }
    be.linear_bwd_x(ws.dlogits, ws.cls_w, ws.dxf, N, D, W, false);
    if (cls_trains) scatter_compacted(vc, ws.cls_g, m.g.classifier, D);
  } else {
    be.cross_entropy_bwd(ws.logits, ws.logit_targets.data(), row_scale, ws.dlogits, N, W);
    if (masked) zero_uncounted_rows(ws.dlogits, ws.loss_mask, W);
    if (cls_trains) be.linear_bwd_w(ws.dlogits, ws.xf, m.g.classifier, N, D, W);
    be.linear_bwd_x(ws.dlogits, m.w.classifier, ws.dxf, N, D, W, false);
  }
  ws.classifier_ms += ms_since(t_cls);
  std::fill(ws.dx_a, ws.dx_a + size_t(N) * D, 0.0f);
  be.rmsnorm_bwd(ws.dxf, ws.x[c.n_layers], m.w.final_norm, ws.final_rstd, ws.dx_a, m.g.final_norm, N, D);
  if (on_final) on_final(c.n_layers);
  float* dcur = ws.dx_a;  // gradient w.r.t. the stream after the current block
  float* dnext = ws.dx_b;
  for (int l = c.n_layers - 1; l >= 0; --l) {
    BlockDims d = ws.dims;
    d.layer = l;
    m.bring_layer(l);
    recompute_layer(be, m, ws, d);
    mask_clamped(dcur, ws.x[l + 1], size_t(N) * D, ws.act_clip);
    be.ffn_block_bwd(d, m.w.layers[l], m.g.layers[l], ws.x_mid_of(l), ws.ffn_of(l), dcur, dnext, ws.ffn_scratch);
    std::swap(dcur, dnext);
    mask_clamped(dcur, ws.x_mid_of(l), size_t(N) * D, ws.act_clip);
    be.attention_block_bwd(d, m.w.layers[l], m.g.layers[l], ws.x[l], ws.attn_of(l), dcur, dnext,
                           ws.attn_scratch);
    std::swap(dcur, dnext);
    if (on_final) on_final(l);
  }
  if (m.g.embedding) be.embedding_bwd(ws.inputs.data(), dcur, m.g.embedding, N, D);
  if (on_final) on_final(-1);
}

}  // namespace anetrain
