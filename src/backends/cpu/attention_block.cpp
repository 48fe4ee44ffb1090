// cpu-bf16's attention block, for the same reason and by the same rule as ffn_block.cpp: each
// bf16 operand is made once — the normed input by RMSNorm itself (kept for the weight gradients
// in the saved buffer's memory), α·dout in the residual's backward pass, the Q/K/V gradients once
// for both of their products — where the composed stage converts the normed input six times and
// each gradient twice. The same roundings of the same values: bit-identical to the composed stage.
#include <cstring>

#include "backends/cpu/cpu_backend.h"

namespace anetrain {

void CpuBackend::attention_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                                     AttentionSaved& s) {
  if (precision_ != Precision::bf16 || w.lora.rank) return Backend::attention_block_fwd(d, w, x, out, s);
  const int N = d.N(), D = d.D, qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;
  uint16_t* xn = reinterpret_cast<uint16_t*>(s.xn);  // bf16 in the saved buffer (ffn_block.cpp)
  rmsnorm_fwd_to_bf16(x, w.attn_norm, xn, s.rstd, N, D, d.eps);
  gemm_.bf16(xn, false, bf16_weight(w.wq, size_t(qd) * D), true, d.qk_norm ? s.q_raw : s.q, N, qd, D, false);
  gemm_.bf16(xn, false, bf16_weight(w.wk, size_t(kvd) * D), true, d.qk_norm ? s.k_raw : s.k, N, kvd, D, false);
  gemm_.bf16(xn, false, bf16_weight(w.wv, size_t(kvd) * D), true, s.v, N, kvd, D, false);
  attention_core_fwd(*this, d, w, s);
  linear_fwd(s.attn, w.wo, s.o, N, qd, D);
  residual_fwd(x, s.o, d.alpha, out, size_t(N) * D);
}

void CpuBackend::attention_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                                     const AttentionSaved& s, const float* dout, float* dx, AttentionScratch& k) {
  if (precision_ != Precision::bf16 || w.lora.rank) return Backend::attention_block_bwd(d, w, g, x, s, dout, dx, k);
  const int N = d.N(), D = d.D, qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;
  const uint16_t* xn = reinterpret_cast<const uint16_t*>(s.xn);
  uint16_t* dres = reinterpret_cast<uint16_t*>(k.dres);
  scale_to_bf16(dout, d.alpha, dres, size_t(N) * D);
  if (g.wo)  // a null gradient is a frozen weight: its product is skipped
    gemm_.bf16(dres, true, bf16_activation(s.attn, size_t(N) * qd, 1), false, g.wo, D, qd, N, true);  // dWo += dresᵀ·attn
  gemm_.bf16(dres, false, bf16_weight(w.wo, size_t(D) * qd), false, k.dattn, N, qd, D, false);      // dattn = dres·Wo
  const auto [dq32, dk32] = attention_core_bwd(*this, d, w, g, s, k);
  // Each gradient converted once, for its weight gradient and its share of dxn.
  const uint16_t* dq = bf16_activation(dq32, size_t(N) * qd, 3);
  const uint16_t* dk = bf16_activation(dk32, size_t(N) * kvd, 4);
  const uint16_t* dv = bf16_activation(k.dv, size_t(N) * kvd, 5);
  if (g.wq) gemm_.bf16(dq, true, xn, false, g.wq, qd, D, N, true);
  if (g.wk) gemm_.bf16(dk, true, xn, false, g.wk, kvd, D, N, true);
  if (g.wv) gemm_.bf16(dv, true, xn, false, g.wv, kvd, D, N, true);
  gemm_.bf16(dq, false, bf16_weight(w.wq, size_t(qd) * D), false, k.dxn, N, D, qd, false);
  gemm_.bf16(dk, false, bf16_weight(w.wk, size_t(kvd) * D), false, k.dxn, N, D, kvd, true);
  gemm_.bf16(dv, false, bf16_weight(w.wv, size_t(kvd) * D), false, k.dxn, N, D, kvd, true);
  std::memcpy(dx, dout, sizeof(float) * size_t(N) * D);  // the skip path
  rmsnorm_bwd(k.dxn, x, w.attn_norm, s.rstd, dx, g.attn_norm, N, D);
}

}  // namespace anetrain
