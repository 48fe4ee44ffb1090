// The bf16 ↔ fp32 passes both matrix-product builds (gemm_onednn.cpp, gemm_blas.cpp) share.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "backends/cpu/gemm.h"
#include "core/dtype.h"

namespace anetrain {

void to_bf16(const float* src, uint16_t* dst, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16_branchless(src[i]);
}

void widen_bf16(const uint16_t* src, float* dst, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

void widen_operands(const uint16_t* A, size_t a_n, const uint16_t* B, size_t b_n, std::vector<float>& a_wide,
                    std::vector<float>& b_wide) {
  if (a_wide.size() < a_n) a_wide.resize(a_n);
  if (b_wide.size() < b_n) b_wide.resize(b_n);
  widen_bf16(A, a_wide.data(), a_n);
  widen_bf16(B, b_wide.data(), b_n);
}

}  // namespace anetrain
