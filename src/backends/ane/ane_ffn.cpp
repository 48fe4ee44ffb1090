// The ane backend's FFN block: forward as one program (gate, up, SwiGLU and down, or three products
// for a layer too wide for one input; one token of generation through the layer's baked
// program), backward as the down product and the gate and up products' dual program, with
// SwiGLU's backward and every dW on the host.
#include <cstring>
#include <optional>

#include "backends/ane/ane_backend.h"
#include "backends/ane/ane_io.h"
#include "backends/ane/layer_programs.h"
#include "backends/ane/staging.h"

namespace anetrain {

using namespace ane_io;  // NOLINT: the stage files share these small helpers
using ane::LayerShape;

void AneBackend::ffn_fwd_on_ane(const BlockDims& d, const LayerTensors& w, const float* x, float* out, FfnSaved& s) {
  const LayerShape ls = LayerShape::from(d);
  const int N = d.N(), T = d.T, D = d.D, F = d.F;
  rmsnorm_fwd(x, w.ffn_norm, s.xn, s.rstd, N, D, d.eps);
  if (const int hb = baked("decode_ffn", d, w); hb >= 0) {  // one token of generation
    mil::Tensor in = fresh_input(D, ane::kAneAlign);  // the token in column 0
    ane::put_rows(in, 0, s.xn, 1, D);
    to_fp16(in);
    const mil::Tensor& o = eval("decode_ffn", hb, in);
    ane::get_channels(o, 0, s.f, 1, D);
    ane::get_channels(o, D, s.g, 1, F);
    ane::get_channels(o, D + F, s.u, 1, F);
    ane::get_channels(o, D + 2 * F, s.h, 1, F);
    residual_fwd(x, s.f, d.alpha, out, size_t(D));
    return;
  }
  const int Tp = ane::ane_round_up(T), Dp = ane::ane_round_up(D), Fp = ane::ane_round_up(F);
  if (!ane::ffn_fused(ls)) {
    // Too wide for one input of fused weights: gate, up and down as three products, SwiGLU here.
    run_linear("ffn_gate", d, D, F, s.xn, w.w_gate, true, s.g);
    run_linear("ffn_up", d, D, F, s.xn, w.w_up, true, s.u);
    swiglu_fwd(s.g, s.u, s.h, size_t(N) * F);
    run_linear("ffn_down", d, F, D, s.h, w.w_down, true, s.f);
    residual_fwd(x, s.f, d.alpha, out, size_t(N) * D);
    return;
  }
  std::optional<Section> timed(section("ffn_fwd"));
  const ane::PlannedProgram plan = ane::planned_program(ls, "ffn_fwd");
  int h = program(plan.kernel, plan.key, plan.make);
  mil::Tensor& in = input_for("ffn_fwd", h, d, Dp, Tp + 3 * Fp, Tp, [&](mil::Tensor& t) {
    ane::put_transposed(t, Tp, w.w_gate, F, D);
    ane::put_transposed(t, Tp + Fp, w.w_up, F, D);
    ane::put_as_stored(t, Tp + 2 * Fp, w.w_down, D, F);
  });
  for (int b = 0; b < d.B; ++b) {
    const size_t r = size_t(b) * T;
    ane::put_rows(in, 0, s.xn + r * D, T, D);
    activations_to_fp16(in, T);
    const mil::Tensor& o = eval("ffn_fwd", h, in, 2.0 * T * 3.0 * D * F);  // gate, up and down
    ane::get_channels(o, 0, s.f + r * D, T, D);
    ane::get_channels(o, Dp, s.g + r * F, T, F);
    ane::get_channels(o, Dp + Fp, s.u + r * F, T, F);
    ane::get_channels(o, Dp + 2 * Fp, s.h + r * F, T, F);
  }
  timed.reset();
  residual_fwd(x, s.f, d.alpha, out, size_t(N) * D);
}

void AneBackend::ffn_bwd_on_ane(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                                const FfnSaved& s, const float* dout, float* dx, FfnScratch& k) {
  const int N = d.N(), D = d.D, F = d.F;
  // Both programs run before any weight gradient accumulates: a rejected one leaves g as it was.
  residual_bwd(dout, d.alpha, k.dres, size_t(N) * D);
  run_linear("down_bwd", d, D, F, k.dres, w.w_down, false, k.dh);  // dh = W_downᵀ·dres
  swiglu_bwd(k.dh, s.g, s.u, k.dg, k.du, size_t(N) * F);
  // dxn = W_gateᵀ·dg + W_upᵀ·du, the last program; then the gate's and up's dW
  two_linears_bwd("gate_up_bwd", d, s.xn, D, F, {k.dg, w.w_gate, g.w_gate}, {k.du, w.w_up, g.w_up}, k.dxn);
  weight_grad(k.dres, s.h, g.w_down, N, F, D);
  std::memcpy(dx, dout, sizeof(float) * size_t(N) * D);
  rmsnorm_bwd(k.dxn, x, w.ffn_norm, s.rstd, dx, g.ffn_norm, N, D);
}

}  // namespace anetrain
