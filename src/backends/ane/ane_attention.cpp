// The ane backend's attention block: q, k, v by one product program; QK-norm (when the model has
// it) on the CPU in fp32; RoPE and causal attention as one program per direction. Grouped-query
// layers give every query head its own copy of its kv head (put_heads) and sum the copies'
// gradients in fp32 (get_heads), as the seed did on the CPU: programs never see N > 1 tensors.
#include <cstring>
#include <optional>

#include "backends/ane/layer_programs.h"
#include "backends/ane/staging.h"
#include "backends/ane/ane_backend.h"
#include "backends/ane/ane_io.h"

namespace anetrain {

using namespace ane_io;  // NOLINT: the stage files share these small helpers
using ane::AttentionShape;
using ane::HeadLayout;
using ane::LayerShape;

namespace {

// How a layer's heads sit in the attention programs' channels: query heads as they are, kv heads
// repeated once per query head that reads them, each padded to the programs' head width.
struct AttentionLayout {
  AttentionShape a;
  HeadLayout q_heads, kv_heads;
  int C;  // channels of one of q, k, v, dattn
  AttentionLayout(const BlockDims& d, const LayerShape& ls)
      : a(AttentionShape::from(ls)),
        q_heads{d.Hq, 1, d.hd, a.hd},
        kv_heads{d.Hkv, d.Hq / d.Hkv, d.hd, a.hd},
        C(a.width()) {}
};

// One sequence's QKᵀ and P·V as model/flops.h counts them: each query over the (T+1)/2 keys it
// sees on average (the programs compute the whole square and mask it).
double causal_attention_flops(int T, int qd) { return 2.0 * 2.0 * qd * (double(T) + 1) / 2 * T; }

}  // namespace

int AneBackend::attention_program(const LayerShape& ls, const char* kernel) {
  const ane::PlannedProgram plan = ane::planned_program(ls, kernel);
  return program(plan.kernel, plan.key, plan.make);
}

void AneBackend::attention_fwd_on_ane(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                                      AttentionSaved& s) {
  const LayerShape ls = LayerShape::from(d);
  const int N = d.N(), T = d.T, D = d.D, qd = ls.qd(), kvd = ls.kvd(), qkv_width = qd + 2 * kvd;
  rmsnorm_fwd(x, w.attn_norm, s.xn, s.rstd, N, D, d.eps);
  qkv_.resize(size_t(N) * qkv_width);
  run_products("qkv_fwd", d, D, qkv_width, {s.xn}, [&](mil::Tensor& t, int col) {
    ane::put_transposed(t, col, w.wq, qd, D);
    ane::put_transposed(t, col + qd, w.wk, kvd, D);
    ane::put_transposed(t, col + qd + kvd, w.wv, kvd, D);
  }, qkv_.data());
  // Before RoPE: q and k into s.q / s.k (through QK-norm, which keeps the raw values and 1/rms).
  float* q_pre = d.qk_norm ? s.q_raw : s.q;
  float* k_pre = d.qk_norm ? s.k_raw : s.k;
  for (int n = 0; n < N; ++n) {
    const float* row = qkv_.data() + size_t(n) * qkv_width;
    std::memcpy(q_pre + size_t(n) * qd, row, sizeof(float) * size_t(qd));
    std::memcpy(k_pre + size_t(n) * kvd, row + qd, sizeof(float) * size_t(kvd));
    std::memcpy(s.v + size_t(n) * kvd, row + qd + kvd, sizeof(float) * size_t(kvd));
  }
  if (d.qk_norm) {
    rmsnorm_fwd(s.q_raw, w.q_norm, s.q, s.q_rstd, N * d.Hq, d.hd, d.eps);
    rmsnorm_fwd(s.k_raw, w.k_norm, s.k, s.k_rstd, N * d.Hkv, d.hd, d.eps);
  }
  std::optional<Section> timed(section("attention_fwd"));
  const AttentionLayout L(d, ls);
  const auto& [a, q_heads, kv_heads, C] = L;
  const int h = attention_program(ls, "attention_fwd");
  mil::Tensor in = fresh_input(3 * C, a.T);  // padding stays zero: heads past hd, tokens past T
  for (int b = 0; b < d.B; ++b) {
    const size_t r = size_t(b) * T;
    ane::put_heads(in, 0, s.q + r * qd, T, q_heads);
    ane::put_heads(in, C, s.k + r * kvd, T, kv_heads);
    ane::put_heads(in, 2 * C, s.v + r * kvd, T, kv_heads);
    to_fp16(in);
    const mil::Tensor& o = eval("attention_fwd", h, in, causal_attention_flops(T, qd));
    ane::get_first_heads(o, 0, s.attn + r * qd, T, q_heads);
    ane::get_first_heads(o, C, s.q + r * qd, T, q_heads);     // after RoPE, for the backward
    ane::get_first_heads(o, 2 * C, s.k + r * kvd, T, kv_heads);
  }
  timed.reset();
  run_linear("wo_fwd", d, qd, D, s.attn, w.wo, true, s.o);
  residual_fwd(x, s.o, d.alpha, out, size_t(N) * D);
}

void AneBackend::attention_bwd_on_ane(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                                      const AttentionSaved& s, const float* dout, float* dx, AttentionScratch& k) {
  const LayerShape ls = LayerShape::from(d);
  const int N = d.N(), T = d.T, D = d.D, qd = ls.qd(), kvd = ls.kvd();
  // Every program runs before any weight gradient accumulates (except QK-norm's two small ones,
  // which the fallback restores): a program rejected midway leaves g as it was.
  residual_bwd(dout, d.alpha, k.dres, size_t(N) * D);
  run_linear("wo_bwd", d, D, qd, k.dres, w.wo, false, k.dattn);  // dattn = Woᵀ·dres
  std::optional<Section> timed(section("attention_bwd"));
  const AttentionLayout L(d, ls);
  const auto& [a, q_heads, kv_heads, C] = L;
  const int h = attention_program(ls, "attention_bwd");
  mil::Tensor in = fresh_input(4 * C, a.T);
  for (int b = 0; b < d.B; ++b) {
    const size_t r = size_t(b) * T;
    ane::put_heads(in, 0, s.q + r * qd, T, q_heads);
    ane::put_heads(in, C, s.k + r * kvd, T, kv_heads);
    ane::put_heads(in, 2 * C, s.v + r * kvd, T, kv_heads);
    ane::put_heads(in, 3 * C, k.dattn + r * qd, T, q_heads);
    to_fp16(in);
    const mil::Tensor& o = eval("attention_bwd", h, in, 2 * causal_attention_flops(T, qd));
    ane::get_heads(o, 0, k.dq + r * qd, T, q_heads);
    ane::get_heads(o, C, k.dk + r * kvd, T, kv_heads);  // the query heads' copies summed in fp32
    ane::get_heads(o, 2 * C, k.dv + r * kvd, T, kv_heads);
  }
  timed.reset();
  const auto [dq, dk] = qk_norm_bwd(*this, d, w, g, s, k);
  // dxn = Wqᵀ·dq + (Wkᵀ·dk + Wvᵀ·dv): two programs (their inputs have different channel counts),
  // the second the last of the stage; then k's and v's dW, and the others.
  run_linear("q_bwd", d, qd, D, dq, w.wq, false, k.dxn);
  kv_part_.resize(size_t(N) * D);
  two_linears_bwd("kv_bwd", d, s.xn, D, kvd, {dk, w.wk, g.wk}, {k.dv, w.wv, g.wv}, kv_part_.data());
  for (size_t i = 0; i < kv_part_.size(); ++i) k.dxn[i] += kv_part_[i];
  weight_grad(k.dres, s.attn, g.wo, N, qd, D);
  weight_grad(dq, s.xn, g.wq, N, D, qd);
  std::memcpy(dx, dout, sizeof(float) * size_t(N) * D);  // the skip path
  rmsnorm_bwd(k.dxn, x, w.attn_norm, s.rstd, dx, g.attn_norm, N, D);
}

}  // namespace anetrain
