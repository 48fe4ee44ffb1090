// Q8_0 products of many activation rows at once (a prompt's chunk), for linear_fwd_packed past
// kQ8TiledRows rows (decoding's few rows stay on packed_dot.h's row kernels). Two kernels, each
// in its own file:
//   AMX-INT8 (packed_gemm_amx.cpp): each tile product is one weight group (or a 64-byte part of
//     one) for 16 weight rows × 16 activation rows;
//   AVX512-VNNI without AMX (packed_gemm_vnni.cpp: AMD Zen 4, Ice Lake, or an AMX machine told
//     ANETRAIN_CPU_LEVEL=avx512vnni): a block of 16 weight rows transposed once per call, so that
//     one vector holds 4 bytes of each row and each vpdpbusd multiplies it by one token's 4 bytes,
//     for 8 tokens at a time.
// Both sum each group's integers exactly in int32, as the row kernels do, then scale them by
// sw·sx and sum in fp32: contract/packed.h's W8A8 product to fp32 summation order. The
// activations are quantized by its function, each thread its share of the rows.
#pragma once
#include <cstdint>
#include <vector>

#include "backends/cpu/packed_dot.h"

namespace anetrain {

// What the tile products need besides the quantized activations, kept between calls so that a
// prompt's chunks do not allocate: the activations quantized and rearranged into the tiles'
// layout, their group scales by token, each thread's copy of a last block of fewer than 16 weight
// rows and its row being quantized.
struct AmxScratch {
  std::vector<int8_t> tokens;
  std::vector<float> token_scales;
  std::vector<int8_t> tail_rows;
  std::vector<float> tail_scales;
  std::vector<int8_t> row;
  std::vector<float> row_scales;
};

// The same for the VNNI products: the tokens quantized, their group scales and per group
// −128·Σx, and each thread's transposed weight block with its group scales.
struct VnniScratch {
  std::vector<int8_t> tokens;
  std::vector<float> token_scales;
  std::vector<int32_t> token_offsets;
  std::vector<int8_t> blocks;
  std::vector<float> block_scales;
};

// True when this CPU has AMX-INT8 and AVX-512, Linux granted this process the tile state, and
// the weights' groups are 32 or a multiple of 64 (the tile's 64-byte row holds whole groups).
bool q8_amx_takes(const MatrixRef& W);
// True when the level allows AVX512-VNNI (core/cpu_features.h) and the groups are multiples of 32
// (whole 8-word runs of a transposed block).
bool q8_vnni_gemm_takes(const MatrixRef& W);

// y_p(N, rows_p) = x · W_pᵀ for Q8_0 parts sharing width and group, x quantized by
// contract/packed.h's rule. Only after q8_amx_takes(W[0]), resp. q8_vnni_gemm_takes(W[0]).
void q8_gemm_amx(const float* x, int N, const MatrixRef* W, float* const* y, int parts, AmxScratch& s);
void q8_gemm_vnni(const float* x, int N, const MatrixRef* W, float* const* y, int parts, VnniScratch& s);

}  // namespace anetrain
