// Low-rank adapters on the ane backend. The programs take their matrices through the input, so
// an adapted projection runs as one matrix, W + scale·B·A, merged on the host once per layer and
// weights version (the optimizer step that moves an adapter moves the version). Through that
// matrix the programs compute the adapted forward and the whole of dx (dy·W + scale·(dy·B)·A);
// what is left is each adapter's dA and dBt, which the host derives from the projection's input
// and output gradient with the contract's own adapter arithmetic.
// With adapter dropout (a training step's LayerAdapters::dropout) the adapted projection is no
// longer one matrix — each row of x meets its own mask — so those stages run on the host
// (ane_fallback.cpp), which applies the contract's masked adapter arithmetic; evaluation,
// validation and generation, which never drop, stay on the programs.
#include <utility>

#include "backends/ane/ane_backend.h"
#include "core/error.h"

namespace anetrain {

namespace {

struct Projection {
  float* LayerTensors::*weight;
  Adapter LayerAdapters::*adapter;
};
constexpr Projection kProjections[] = {
    {&LayerTensors::wq, &LayerAdapters::wq},         {&LayerTensors::wk, &LayerAdapters::wk},
    {&LayerTensors::wv, &LayerAdapters::wv},         {&LayerTensors::wo, &LayerAdapters::wo},
    {&LayerTensors::w_gate, &LayerAdapters::w_gate}, {&LayerTensors::w_up, &LayerAdapters::w_up},
    {&LayerTensors::w_down, &LayerAdapters::w_down}};
constexpr int kProjectionCount = int(sizeof(kProjections) / sizeof(kProjections[0]));

// (out, in) of projection i of kProjections.
std::pair<int, int> projection_shape(const BlockDims& d, int i) {
  const int qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;
  const std::pair<int, int> shapes[] = {{qd, d.D}, {kvd, d.D}, {kvd, d.D}, {d.D, qd},
                                        {d.F, d.D}, {d.F, d.D}, {d.D, d.F}};
  return shapes[i];
}

// Whether `a` and `b` name the same matrices and adapters (a merge of one serves the other).
bool same_source(const LayerTensors& a, const LayerTensors& b) {
  if (a.lora.rank != b.lora.rank || a.lora.scale != b.lora.scale) return false;
  for (const Projection& p : kProjections) {
    const Adapter &x = a.lora.*p.adapter, &y = b.lora.*p.adapter;
    if (a.*p.weight != b.*p.weight || x.a != y.a || x.bt != y.bt) return false;
  }
  return true;
}

void require_adapter_buffers(const float* t, const float* u) {
  if (!t || !u)
    fail("ane: a layer with adapters needs their saved and scratch buffers (plan the block with its lora_rank)");
}

}  // namespace

const LayerTensors& AneBackend::program_weights(const BlockDims& d, const LayerTensors& w) {
  if (!w.lora.rank) return w;
  // The same rule as the staged inputs (input_for): a known layer at a known version is merged
  // once; anything else every call.
  const bool known = d.layer >= 0 && weights_version_ != 0;
  MergedLayer& m = merged_[known ? d.layer : -1];
  const bool fresh = known && m.version == weights_version_ && same_source(m.source, w);
  if (!fresh) {
    const int r = w.lora.rank;
    std::vector<float> scaled_a;
    for (int i = 0; i < kProjectionCount; ++i) {
      const Adapter& a = w.lora.*kProjections[i].adapter;
      std::vector<float>& merged = m.merged[i];
      if (!a.a) {
        std::vector<float>().swap(merged);
        continue;
      }
      const auto [out, in] = projection_shape(d, i);
      const float* W = w.*kProjections[i].weight;
      merged.assign(W, W + size_t(out) * size_t(in));
      scaled_a.assign(a.a, a.a + size_t(r) * size_t(in));
      for (float& v : scaled_a) v *= w.lora.scale;
      linear_bwd_w(a.bt, scaled_a.data(), merged.data(), r, in, out);  // += Btᵀ·(scale·A) = scale·B·A
    }
    m.source = w;
    m.version = known ? weights_version_ : 0;
  }
  m.tensors = w;  // the gains are w's own
  m.tensors.lora = LayerAdapters{};
  for (int i = 0; i < kProjectionCount; ++i)
    if ((w.lora.*kProjections[i].adapter).a) m.tensors.*kProjections[i].weight = m.merged[i].data();
  return m.tensors;
}

void AneBackend::keep_adapter_inputs(const BlockDims& d, const LayerTensors& w, AttentionSaved& s) {
  if (!w.lora.rank || !s.lora_t) return;  // no adapters, or a forward that no backward follows
  const int N = d.N(), qd = d.Hq * d.hd;
  const LayerAdapters& L = w.lora;
  adapter_project(*this, L, L.wq, s.xn, lora_slot(s.lora_t, 0, d), N, d.D);
  adapter_project(*this, L, L.wk, s.xn, lora_slot(s.lora_t, 1, d), N, d.D);
  adapter_project(*this, L, L.wv, s.xn, lora_slot(s.lora_t, 2, d), N, d.D);
  adapter_project(*this, L, L.wo, s.attn, lora_slot(s.lora_t, 3, d), N, qd);
}

void AneBackend::keep_adapter_inputs(const BlockDims& d, const LayerTensors& w, FfnSaved& s) {
  if (!w.lora.rank || !s.lora_t) return;
  const int N = d.N();
  const LayerAdapters& L = w.lora;
  adapter_project(*this, L, L.w_gate, s.xn, lora_slot(s.lora_t, 0, d), N, d.D);
  adapter_project(*this, L, L.w_up, s.xn, lora_slot(s.lora_t, 1, d), N, d.D);
  adapter_project(*this, L, L.w_down, s.h, lora_slot(s.lora_t, 2, d), N, d.F);
}

void AneBackend::adapter_grads_after(const BlockDims& d, const LayerTensors& w, const LayerTensors& g,
                                     const AttentionSaved& s, AttentionScratch& k) {
  if (!w.lora.rank) return;
  require_adapter_buffers(s.lora_t, k.lora_u);
  const int N = d.N(), D = d.D, qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;
  const LayerAdapters& L = w.lora;
  // The projections' output gradients as the backward left them: q and k before QK-norm's.
  const float* dq = d.qk_norm ? k.dq_raw : k.dq;
  const float* dk = d.qk_norm ? k.dk_raw : k.dk;
  adapter_grads(*this, L, L.wo, g.lora.wo, s.attn, lora_slot(s.lora_t, 3, d), k.dres, k.lora_u, N, qd, D);
  adapter_grads(*this, L, L.wq, g.lora.wq, s.xn, lora_slot(s.lora_t, 0, d), dq, k.lora_u, N, D, qd);
  adapter_grads(*this, L, L.wk, g.lora.wk, s.xn, lora_slot(s.lora_t, 1, d), dk, k.lora_u, N, D, kvd);
  adapter_grads(*this, L, L.wv, g.lora.wv, s.xn, lora_slot(s.lora_t, 2, d), k.dv, k.lora_u, N, D, kvd);
}

void AneBackend::adapter_grads_after(const BlockDims& d, const LayerTensors& w, const LayerTensors& g,
                                     const FfnSaved& s, FfnScratch& k) {
  if (!w.lora.rank) return;
  require_adapter_buffers(s.lora_t, k.lora_u);
  const int N = d.N(), D = d.D, F = d.F;
  const LayerAdapters& L = w.lora;
  adapter_grads(*this, L, L.w_down, g.lora.w_down, s.h, lora_slot(s.lora_t, 2, d), k.dres, k.lora_u, N, F, D);
  adapter_grads(*this, L, L.w_gate, g.lora.w_gate, s.xn, lora_slot(s.lora_t, 0, d), k.dg, k.lora_u, N, D, F);
  adapter_grads(*this, L, L.w_up, g.lora.w_up, s.xn, lora_slot(s.lora_t, 1, d), k.du, k.lora_u, N, D, F);
}

}  // namespace anetrain
