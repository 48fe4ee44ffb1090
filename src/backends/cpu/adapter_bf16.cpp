// Low-rank adapters inside cpu-bf16's fused block stages (attention_block.cpp, ffn_block.cpp).
// The stage hands over the projection's input and output gradient already in bf16 (the normed
// input, SwiGLU's output, α·dout, the Q/K/V and gate/up gradients it made once for the base's
// products), so of the adapter's operands only its own (N, r) ones are converted here: t and u.
// Every product is one the contract's adapter_fwd/adapter_bwd make through linear ops, on the
// same bf16 roundings of the same values (with adapter dropout too: contract/stages.h's mask acts
// on x alone, which commutes with rounding to bf16). Adapters whose projections read the same
// input (q, k, v; gate, up) share their A-side products (adapters_fwd_bf16/adapters_bwd_bf16):
// each small product is mostly fixed cost, so one of r·parts rows costs about what one of r does,
// and their dx terms take one pass over dx instead of one each. The forward and the adapters'
// gradients keep the composition's values; dx sums the same terms in another order, and the norm
// gains' gradients follow it (test_cpu_bf16_stages bounds both).
#include "backends/cpu/cpu_backend.h"
#include "contract/stages.h"
#include "core/dtype.h"

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

namespace {
template <class Part>
int adapters_present(std::initializer_list<Part> parts) {
  int n = 0;
  for (const Part& p : parts) n += p.a->a != nullptr;
  return n;
}
}  // namespace

// The parts' A (each (r, in), bf16) one after another: a (r·parts, in) matrix.
const uint16_t* CpuBackend::stacked_adapter_a(const LayerAdapters& L, const Adapter* const* as, int n, int in) {
  const size_t each = size_t(L.rank) * in;
  if (adapter_a_stack_.size() < n * each) adapter_a_stack_.resize(n * each);
  // bf16_weight may convert into one shared buffer (a weight outside the arena): copied at once.
  for (int k = 0; k < n; ++k)
    std::memcpy(adapter_a_stack_.data() + k * each, bf16_weight(as[k]->a, each), sizeof(uint16_t) * each);
  return adapter_a_stack_.data();
}

void CpuBackend::adapters_fwd_bf16(const LayerAdapters& L, std::initializer_list<AdapterFwdPart> parts,
                                   const uint16_t* x, int N, int in) {
  const int n = adapters_present(parts);
  if (n < 2 || n > 8 || L.dropout.active()) {  // with dropout each adapter reads its own masked x
    for (const AdapterFwdPart& p : parts) adapter_fwd_bf16(L, *p.a, x, p.y, p.t, N, in, p.out);
    return;
  }
  const int r = L.rank, w = n * r;
  const Adapter* as[8];
  int k = 0;
  for (const AdapterFwdPart& p : parts)
    if (p.a->a) as[k++] = p.a;
  if (adapter_wide_.size() < size_t(N) * w) adapter_wide_.resize(size_t(N) * w);
  float* T = adapter_wide_.data();
  gemm_.bf16(x, false, stacked_adapter_a(L, as, n, in), true, T, N, w, in, false);  // [t_1 … t_n] = x·[A_1; …]ᵀ
  const float scale = adapter_scale(L);
  k = 0;
  for (const AdapterFwdPart& p : parts) {
    if (!p.a->a) continue;
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < r; ++j) p.t[size_t(i) * r + j] = T[size_t(i) * w + k * r + j] * scale;
    ++k;
    const uint16_t* t16 = bf16_activation(p.t, size_t(N) * r, 0);
    gemm_.bf16(t16, false, bf16_weight(p.a->bt, size_t(r) * p.out), false, p.y, N, p.out, r, true);  // y += t·Bᵀ
  }
}

void CpuBackend::adapters_bwd_bf16(const LayerAdapters& L, std::initializer_list<AdapterBwdPart> parts,
                                   const uint16_t* x, float* dx_acc, float* u, int N, int in) {
  const int n = adapters_present(parts);
  if (n < 2 || n > 8 || L.dropout.active()) {
    for (const AdapterBwdPart& p : parts) adapter_bwd_bf16(L, *p.a, *p.g, x, p.t, p.dy, dx_acc, u, N, in, p.out);
    return;
  }
  const int r = L.rank, w = n * r;
  const size_t nr = size_t(N) * r;
  const float scale = adapter_scale(L);
  if (adapter_u16_.size() < size_t(N) * w) adapter_u16_.resize(size_t(N) * w);
  uint16_t* U = adapter_u16_.data();  // [u_1 … u_n] in bf16, (N, w)
  const Adapter* as[8];
  int k = 0;
  bool any_da = false;
  for (const AdapterBwdPart& p : parts) {
    if (!p.a->a) continue;
    if (p.g->bt) gemm_.bf16(bf16_activation(p.t, nr, 0), true, p.dy, false, p.g->bt, r, p.out, N, true);  // dBt += tᵀ·dy
    gemm_.bf16(p.dy, false, bf16_weight(p.a->bt, size_t(r) * p.out), true, u, N, r, p.out, false);      // u = dy·B
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < r; ++j) U[size_t(i) * w + k * r + j] = f32_to_bf16_branchless(u[size_t(i) * r + j] * scale);
    any_da = any_da || p.g->a;
    as[k++] = p.a;
  }
  if (any_da) {  // [dA_1; …] = [u_1 … u_n]ᵀ·x, each added to its gradient
    if (adapter_wide_.size() < size_t(w) * in) adapter_wide_.resize(size_t(w) * in);
    float* G = adapter_wide_.data();
    gemm_.bf16(U, true, x, false, G, w, in, N, false);
    k = 0;
    for (const AdapterBwdPart& p : parts) {
      if (!p.a->a) continue;
      if (p.g->a) {
        const float* Gk = G + size_t(k) * r * in;
#pragma omp simd  // r·in values: less than a thread team's start would cost
        for (size_t i = 0; i < size_t(r) * in; ++i) p.g->a[i] += Gk[i];
      }
      ++k;
    }
  }
  gemm_.bf16(U, false, stacked_adapter_a(L, as, n, in), false, dx_acc, N, in, w, true);  // dx += [u_1 … u_n]·[A_1; …]
}

}  // namespace anetrain
