// cpu-bf16's attention block, for the same reason and by the same rule as ffn_block.cpp: each
// bf16 operand is made once — the normed input by RMSNorm itself (kept for the weight gradients
// in the saved buffer's memory), α·dout in the residual's backward pass, the Q/K/V gradients once
// for both of their products — where the composed stage converts the normed input six times and
// each gradient twice. The same roundings of the same values: bit-identical to the composed stage.
// Low-rank adapters (adapter_bf16.cpp) read those same bf16 operands, and the attention output's
// bf16 copy serves both Wo's products and its adapter's.
#include <cstring>

#include "backends/cpu/cpu_backend.h"

namespace anetrain {

void CpuBackend::attention_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                                     AttentionSaved& s) {
  if (precision_ != Precision::bf16) return Backend::attention_block_fwd(d, w, x, out, s);
  const int N = d.N(), D = d.D, qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;
  const LayerAdapters& A = w.lora;
  uint16_t* xn = reinterpret_cast<uint16_t*>(s.xn);  // bf16 in the saved buffer (ffn_block.cpp)
  rmsnorm_fwd_to_bf16(x, w.attn_norm, xn, s.rstd, N, D, d.eps);
  float* q_out = d.qk_norm ? s.q_raw : s.q;
  float* k_out = d.qk_norm ? s.k_raw : s.k;
  gemm_.bf16(xn, false, bf16_weight(w.wq, size_t(qd) * D), true, q_out, N, qd, D, false);
  gemm_.bf16(xn, false, bf16_weight(w.wk, size_t(kvd) * D), true, k_out, N, kvd, D, false);
  gemm_.bf16(xn, false, bf16_weight(w.wv, size_t(kvd) * D), true, s.v, N, kvd, D, false);
  adapters_fwd_bf16(A,
                    {{&A.wq, q_out, lora_slot(s.lora_t, 0, d), qd},
                     {&A.wk, k_out, lora_slot(s.lora_t, 1, d), kvd},
                     {&A.wv, s.v, lora_slot(s.lora_t, 2, d), kvd}},
                    xn, N, D);
  attention_core_fwd(*this, d, w, s);
  const uint16_t* attn = bf16_activation(s.attn, size_t(N) * qd, 1);
  gemm_.bf16(attn, false, bf16_weight(w.wo, size_t(D) * qd), true, s.o, N, D, qd, false);
  adapter_fwd_bf16(A, A.wo, attn, s.o, lora_slot(s.lora_t, 3, d), N, qd, D);
  residual_fwd(x, s.o, d.alpha, out, size_t(N) * D);
}

void CpuBackend::attention_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                                     const AttentionSaved& s, const float* dout, float* dx, AttentionScratch& k) {
  if (precision_ != Precision::bf16) return Backend::attention_block_bwd(d, w, g, x, s, dout, dx, k);
  const int N = d.N(), D = d.D, qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;
  const LayerAdapters& A = w.lora;
  const uint16_t* xn = reinterpret_cast<const uint16_t*>(s.xn);
  uint16_t* dres = reinterpret_cast<uint16_t*>(k.dres);
  scale_to_bf16(dout, d.alpha, dres, size_t(N) * D);
  // The attention output in bf16, for Wo's gradient and its adapter's (neither: a frozen Wo alone).
  const uint16_t* attn = g.wo || A.wo.a ? bf16_activation(s.attn, size_t(N) * qd, 1) : nullptr;
  if (g.wo) gemm_.bf16(dres, true, attn, false, g.wo, D, qd, N, true);  // dWo += dresᵀ·attn (null: frozen)
  gemm_.bf16(dres, false, bf16_weight(w.wo, size_t(D) * qd), false, k.dattn, N, qd, D, false);  // dattn = dres·Wo
  adapter_bwd_bf16(A, A.wo, g.lora.wo, attn, lora_slot(s.lora_t, 3, d), dres, k.dattn, k.lora_u, N, qd, D);
  const auto [dq32, dk32] = attention_core_bwd(*this, d, w, g, s, k);
  // Each gradient converted once, for its weight gradient, its adapter and its share of dxn.
  const uint16_t* dq = bf16_activation(dq32, size_t(N) * qd, 3);
  const uint16_t* dk = bf16_activation(dk32, size_t(N) * kvd, 4);
  const uint16_t* dv = bf16_activation(k.dv, size_t(N) * kvd, 5);
  if (g.wq) gemm_.bf16(dq, true, xn, false, g.wq, qd, D, N, true);
  if (g.wk) gemm_.bf16(dk, true, xn, false, g.wk, kvd, D, N, true);
  if (g.wv) gemm_.bf16(dv, true, xn, false, g.wv, kvd, D, N, true);
  // dxn: the three projections, then their adapters' terms in one product (adapters_bwd_bf16).
  gemm_.bf16(dq, false, bf16_weight(w.wq, size_t(qd) * D), false, k.dxn, N, D, qd, false);
  gemm_.bf16(dk, false, bf16_weight(w.wk, size_t(kvd) * D), false, k.dxn, N, D, kvd, true);
  gemm_.bf16(dv, false, bf16_weight(w.wv, size_t(kvd) * D), false, k.dxn, N, D, kvd, true);
  adapters_bwd_bf16(A,
                    {{&A.wq, &g.lora.wq, lora_slot(s.lora_t, 0, d), dq, qd},
                     {&A.wk, &g.lora.wk, lora_slot(s.lora_t, 1, d), dk, kvd},
                     {&A.wv, &g.lora.wv, lora_slot(s.lora_t, 2, d), dv, kvd}},
                    xn, k.dxn, k.lora_u, N, D);
  std::memcpy(dx, dout, sizeof(float) * size_t(N) * D);  // the skip path
  rmsnorm_bwd(k.dxn, x, w.attn_norm, s.rstd, dx, g.attn_norm, N, D);
}

}  // namespace anetrain
