// A low-rank adapter inside cpu-bf16's fused block stages (attention_block.cpp, ffn_block.cpp).
// The stage hands over the projection's input and output gradient already in bf16 (the normed
// input, SwiGLU's output, α·dout, the Q/K/V and gate/up gradients it made once for the base's
// products), so of the adapter's operands only its own (N, r) ones are converted here: t and u.
// Every product is the one the contract's adapter_fwd/adapter_bwd make through linear ops, on the
// same bf16 roundings of the same values, in the same order into each accumulator — so a fused
// stage with adapters equals its composition bit for bit (test_cpu_bf16_stages), with adapter
// dropout too (contract/stages.h: the mask acts on x alone, which commutes with rounding to bf16).
#include "backends/cpu/cpu_backend.h"
#include "contract/stages.h"

namespace anetrain {

namespace {
// x, or with adapter dropout its masked copy in the layer's dropout scratch: the bf16 rounding of
// the composed stage's masked fp32 input, since a dropped element is 0 either way.
const uint16_t* dropped_input(const LayerAdapters& L, const Adapter& a, const uint16_t* x, int N, int in) {
  if (!L.dropout.active()) return x;
  require_dropout_scratch(L);
  uint16_t* xd = reinterpret_cast<uint16_t*>(L.dropout.scratch);
  apply_adapter_dropout_bf16(L, a, x, xd, N, in);
  return xd;
}
}  // namespace

void CpuBackend::adapter_fwd_bf16(const LayerAdapters& L, const Adapter& a, const uint16_t* x, float* y, float* t,
                                  int N, int in, int out) {
  if (!a.a) return;
  const int r = L.rank;
  const size_t n = size_t(N) * r;
  const float scale = adapter_scale(L);
  x = dropped_input(L, a, x, N, in);
  gemm_.bf16(x, false, bf16_weight(a.a, size_t(r) * in), true, t, N, r, in, false);  // t = x·Aᵀ
  for (size_t i = 0; i < n; ++i) t[i] *= scale;
  const uint16_t* t16 = bf16_activation(t, n, 0);
  gemm_.bf16(t16, false, bf16_weight(a.bt, size_t(r) * out), false, y, N, out, r, true);  // y += t·Bᵀ
}

void CpuBackend::adapter_bwd_bf16(const LayerAdapters& L, const Adapter& a, const Adapter& g, const uint16_t* x,
                                  const float* t, const uint16_t* dy, float* dx_acc, float* u, int N, int in,
                                  int out) {
  if (!a.a) return;
  const int r = L.rank;
  const size_t n = size_t(N) * r;
  const float scale = adapter_scale(L);
  if (g.bt) gemm_.bf16(bf16_activation(t, n, 0), true, dy, false, g.bt, r, out, N, true);  // dBt += tᵀ·dy
  gemm_.bf16(dy, false, bf16_weight(a.bt, size_t(r) * out), true, u, N, r, out, false);     // u = dy·B
  for (size_t i = 0; i < n; ++i) u[i] *= scale;
  const uint16_t* u16 = bf16_activation(u, n, 0);
  if (g.a) gemm_.bf16(u16, true, dropped_input(L, a, x, N, in), false, g.a, r, in, N, true);  // dA += uᵀ·x
  if (!L.dropout.active()) {
    gemm_.bf16(u16, false, bf16_weight(a.a, size_t(r) * in), false, dx_acc, N, in, r, true);  // dx += u·A
    return;
  }
  float* ua = L.dropout.scratch;  // dx += (u·A) ⊙ m
  gemm_.bf16(u16, false, bf16_weight(a.a, size_t(r) * in), false, ua, N, in, r, false);
  apply_adapter_dropout(L, a, ua, dx_acc, N, in, true);
}

}  // namespace anetrain
