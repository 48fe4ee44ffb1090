// ref token embedding: a row gather forward, a scatter-add backward.
#include <cstring>

#include "backends/ref/ref_backend.h"

namespace anetrain {

void RefBackend::embedding_fwd(const int32_t* tokens, const float* E, float* y, int N, int D) {
  for (int n = 0; n < N; ++n) std::memcpy(y + size_t(n) * D, E + size_t(tokens[n]) * D, sizeof(float) * D);
}

void RefBackend::embedding_bwd(const int32_t* tokens, const float* dy, float* dE, int N, int D) {
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < D; ++i) dE[size_t(tokens[n]) * D + i] += dy[size_t(n) * D + i];
}

}  // namespace anetrain
