// cpu token embedding. The backward parallelises over embedding columns so that two rows with
// the same token never race on one dE element.
#include <cstring>

#include "backends/cpu/cpu_backend.h"

namespace anetrain {

void CpuBackend::embedding_fwd(const int32_t* tokens, const float* E, float* y, int N, int D) {
#pragma omp parallel for
  for (int n = 0; n < N; ++n) std::memcpy(y + size_t(n) * D, E + size_t(tokens[n]) * D, sizeof(float) * D);
}

void CpuBackend::embedding_bwd(const int32_t* tokens, const float* dy, float* dE, int N, int D) {
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int i = 0; i < D; ++i)
      for (int n = 0; n < N; ++n) dE[size_t(tokens[n]) * D + i] += dy[size_t(n) * D + i];
  }
}

}  // namespace anetrain
