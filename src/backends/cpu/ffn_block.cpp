// cpu-bf16's FFN block. The composed stage (kernels/stages.cpp) converts an fp32 activation to
// bf16 right before every product that reads it: the normed input twice forward and twice more
// for the weight gradients, SwiGLU's output, the residual's gradient, the gate and up gradients
// twice each. Here the pass that produces an operand writes it in bf16 once (RMSNorm, SwiGLU,
// the residual's α·dout, SwiGLU's backward), and the forward keeps the normed input and SwiGLU's
// output in that form for the backward (in the saved buffers' memory: the stage's own, from its
// forward to its backward). Each bf16 value is the same rounding of the same fp32 value as in
// the composed stage, so the results are bit-identical to it (tested); fp32 runs compose. Low-rank
// adapters (adapter_bf16.cpp) read the same bf16 operands as their projections.
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/fast_math.h"
#include "backends/cpu/rmsnorm_row.h"
#include "core/dtype.h"

namespace anetrain {

namespace {

// A saved fp32 buffer reused for bf16 values: it has room for twice as many, and in the bf16
// stages nothing reads it as floats (only this file's passes and oneDNN read it).
uint16_t* as_bf16(float* p) { return reinterpret_cast<uint16_t*>(p); }

}  // namespace

// rmsnorm_fwd's loop, writing bf16.
void rmsnorm_fwd_to_bf16(const float* x, const float* w, uint16_t* y, float* rstd, int N, int D, float eps) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    uint16_t* yr = y + size_t(n) * D;
    rstd[n] = rmsnorm_row(x + size_t(n) * D, w, D, eps, [yr](int i, float v) { yr[i] = f32_to_bf16_branchless(v); });
  }
}

// y = α·x in bf16 (residual_bwd and the conversion its products would make, in one pass).
void scale_to_bf16(const float* x, float alpha, uint16_t* y, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) y[i] = f32_to_bf16_branchless(alpha * x[i]);
}

void CpuBackend::ffn_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out, FfnSaved& s) {
  if (precision_ != Precision::bf16) return Backend::ffn_block_fwd(d, w, x, out, s);
  const int N = d.N(), D = d.D, F = d.F;
  const LayerAdapters& A = w.lora;
  uint16_t* xn = as_bf16(s.xn);
  uint16_t* h = as_bf16(s.h);
  rmsnorm_fwd_to_bf16(x, w.ffn_norm, xn, s.rstd, N, D, d.eps);
  gemm_.bf16(xn, false, bf16_weight(w.w_gate, size_t(F) * D), true, s.g, N, F, D, false);
  gemm_.bf16(xn, false, bf16_weight(w.w_up, size_t(F) * D), true, s.u, N, F, D, false);
  adapters_fwd_bf16(A, {{&A.w_gate, s.g, lora_slot(s.lora_t, 0, d), F}, {&A.w_up, s.u, lora_slot(s.lora_t, 1, d), F}},
                    xn, N, D);
  const size_t NF = size_t(N) * F;
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < NF; ++i) h[i] = f32_to_bf16_branchless(swiglu(s.g[i], s.u[i]));
  gemm_.bf16(h, false, bf16_weight(w.w_down, size_t(D) * F), true, s.f, N, D, F, false);
  adapter_fwd_bf16(A, A.w_down, h, s.f, lora_slot(s.lora_t, 2, d), N, F, D);
  residual_fwd(x, s.f, d.alpha, out, size_t(N) * D);
}

void CpuBackend::ffn_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                               const FfnSaved& s, const float* dout, float* dx, FfnScratch& k) {
  if (precision_ != Precision::bf16) return Backend::ffn_block_bwd(d, w, g, x, s, dout, dx, k);
  const int N = d.N(), D = d.D, F = d.F;
  const LayerAdapters& A = w.lora;
  const uint16_t* xn = as_bf16(s.xn);
  const uint16_t* h = as_bf16(s.h);
  uint16_t* dres = as_bf16(k.dres);
  uint16_t* dg = as_bf16(k.dg);
  uint16_t* du = as_bf16(k.du);
  scale_to_bf16(dout, d.alpha, dres, size_t(N) * D);
  // A null gradient is a frozen weight: its product is skipped.
  if (g.w_down) gemm_.bf16(dres, true, h, false, g.w_down, D, F, N, true);  // dW_down += dresᵀ·h
  gemm_.bf16(dres, false, bf16_weight(w.w_down, size_t(D) * F), false, k.dh, N, F, D, false);   // dh = dres·W_down
  adapter_bwd_bf16(A, A.w_down, g.lora.w_down, h, lora_slot(s.lora_t, 2, d), dres, k.dh, k.lora_u, N, F, D);
  const size_t NF = size_t(N) * F;
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < NF; ++i) {  // swiglu_bwd, written in bf16
    float dgi, dui;
    swiglu_grads(k.dh[i], s.g[i], s.u[i], dgi, dui);
    dg[i] = f32_to_bf16_branchless(dgi);
    du[i] = f32_to_bf16_branchless(dui);
  }
  if (g.w_gate) gemm_.bf16(dg, true, xn, false, g.w_gate, F, D, N, true);  // dW_gate += dgᵀ·xn
  if (g.w_up) gemm_.bf16(du, true, xn, false, g.w_up, F, D, N, true);      // dW_up += duᵀ·xn
  // dxn = dg·W_gate + du·W_up, then both adapters' terms in one product (adapters_bwd_bf16).
  // (bf16_weight is called right before each product: a weight outside the arena is converted
  // into one shared scratch buffer.)
  gemm_.bf16(dg, false, bf16_weight(w.w_gate, size_t(F) * D), false, k.dxn, N, D, F, false);
  gemm_.bf16(du, false, bf16_weight(w.w_up, size_t(F) * D), false, k.dxn, N, D, F, true);
  adapters_bwd_bf16(A,
                    {{&A.w_gate, &g.lora.w_gate, lora_slot(s.lora_t, 0, d), dg, F},
                     {&A.w_up, &g.lora.w_up, lora_slot(s.lora_t, 1, d), du, F}},
                    xn, k.dxn, k.lora_u, N, D);
  std::memcpy(dx, dout, sizeof(float) * size_t(N) * D);           // the skip path
  rmsnorm_bwd(k.dxn, x, w.ffn_norm, s.rstd, dx, g.ffn_norm, N, D);
}

}  // namespace anetrain
