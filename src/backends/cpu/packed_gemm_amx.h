// Q8_0 products of many activation rows at once (a prompt's chunk) on AMX-INT8 tiles. Each tile
// product is one weight group (or a 64-byte part of one) for 16 weight rows × 16 activation rows,
// exact in int32 like the row kernels' VNNI dots; each group's integers are then scaled by
// sw·sx and summed in fp32, so the result is contract/packed.h's W8A8 product to fp32 summation
// order, as with the row kernels. Decoding (a few rows) stays on the row kernels: a tile product
// pads the activation rows to 16.
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

// True when this CPU has AMX-INT8 and AVX-512, Linux granted this process the tile state, and
// the weights' groups are 32 or a multiple of 64 (the tile's 64-byte row holds whole groups).
bool q8_amx_takes(const MatrixRef& W);

// y_p(N, rows_p) = x · W_pᵀ for Q8_0 parts sharing width and group, x quantized by
// contract/packed.h's rule (each thread its share of the rows). Only after q8_amx_takes(W[0]).
void q8_gemm_amx(const float* x, int N, const MatrixRef* W, float* const* y, int parts, AmxScratch& s);

}  // namespace anetrain
