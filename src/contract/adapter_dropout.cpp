// The adapters' input dropout (tensors.h AdapterDropout): the mask applied to a projection's
// input, or to its input gradient, element by element from the counter-based generator. Every
// element is independent of the others, so rows split over threads give the same bits.
#include "contract/stages.h"
#include "core/dropout_mask.h"
#include "core/error.h"

namespace anetrain {

namespace {
// Element (n, j) of the mask over projection `a`'s (N, in) input, for each row: f(n, j, keep).
template <class F>
void for_each_masked_row(const LayerAdapters& L, const Adapter& a, int N, int in, F&& f) {
  const uint64_t stream = dropout_projection_stream(L.dropout.key, L.dropout.layer, adapter_projection(L, a));
  const double p = L.dropout.p;
#pragma omp parallel for schedule(static) if (size_t(N) * size_t(in) >= (1u << 16))
  for (int n = 0; n < N; ++n) {
    const uint64_t row = uint64_t(n) * uint64_t(in);
    for (int j = 0; j < in; ++j) f(size_t(row) + size_t(j), dropout_keeps(stream, row + uint64_t(j), p));
  }
}
}  // namespace

int adapter_projection(const LayerAdapters& L, const Adapter& a) {
  const Adapter* all[] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down};
  for (int i = 0; i < 7; ++i)
    if (all[i] == &a) return i;
  fail("internal: an adapter that is not one of its layer's seven");
}

float adapter_scale(const LayerAdapters& L) {
  return L.dropout.active() ? float(double(L.scale) / (1.0 - double(L.dropout.p))) : L.scale;
}

void require_dropout_scratch(const LayerAdapters& L) {
  if (L.dropout.active() && !L.dropout.scratch)
    fail("internal: adapter dropout is on without its scratch buffer (AdapterDropout::scratch)");
}

void apply_adapter_dropout(const LayerAdapters& L, const Adapter& a, const float* src, float* dst, int N, int in,
                           bool accumulate) {
  if (accumulate)
    for_each_masked_row(L, a, N, in, [&](size_t i, bool keep) {
      if (keep) dst[i] += src[i];
    });
  else
    for_each_masked_row(L, a, N, in, [&](size_t i, bool keep) { dst[i] = keep ? src[i] : 0.0f; });
}

void apply_adapter_dropout_bf16(const LayerAdapters& L, const Adapter& a, const uint16_t* src, uint16_t* dst, int N,
                                int in) {
  for_each_masked_row(L, a, N, in, [&](size_t i, bool keep) { dst[i] = keep ? src[i] : uint16_t(0); });
}

}  // namespace anetrain
