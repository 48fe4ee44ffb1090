// Q8_0 products of a prompt's chunk on AVX512-VNNI without AMX tiles (AMD Zen 4, Ice Lake, or an
// AMX machine told ANETRAIN_CPU_LEVEL=avx512vnni). The row kernels give each activation row its
// own pass over a weight block, two loads per vpdpbusd; here 4 weight rows × 4 tokens share each
// 64-byte step (4 weight and 12 token loads for 16 vpdpbusd), each pair's sums in fp32 registers. Each
// step's integers are exact in int32 and scaled by sw·sx per group of 32 (a 64-byte step holds
// two such halves), so the result is contract/packed.h's W8A8 product to fp32 summation order.
#pragma once
#include <cstdint>
#include <vector>

#include "backends/cpu/packed_dot.h"

namespace anetrain {

// Kept between calls so that a prompt's chunks do not allocate: the tokens quantized and padded
// to whole 64-byte steps and 4-token groups, per step their vpdpbusd starting sums and their
// scales spread to the step's 16 lanes, and each thread's row's group scales, and the group of each
// 32-byte half of a row.
struct VnniScratch {
  std::vector<int8_t> tokens;
  std::vector<int32_t> starts;
  std::vector<float> lane_scales;
  std::vector<float> row_scales;
  std::vector<int> half_group;
};

// True when the level allows AVX512-VNNI (core/cpu_features.h) and the groups are whole 32-byte
// halves of a step (any multiple of 32).
bool q8_vnni_gemm_takes(const MatrixRef& W);

// y_p(N, rows_p) = x · W_pᵀ for Q8_0 parts sharing width and group, x quantized by
// contract/packed.h's rule. Only after q8_vnni_gemm_takes(W[0]).
void q8_gemm_vnni(const float* x, int N, const MatrixRef* W, float* const* y, int parts, VnniScratch& s);

}  // namespace anetrain
