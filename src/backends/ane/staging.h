// Moving fp32 row-major data (N rows of C features, the CPU side's layout) in and out of the
// channel-first [1, C, 1, W] tensors the programs take. The caller rounds the input to fp16
// once it is complete (mil::round_to_fp16), as writing an fp16 IOSurface does.
#pragma once
#include "mil/tensor.h"

namespace anetrain::ane {

// in[c, col + t] = rows[t·C + c]: T activation rows into columns [col, col + T).
void put_rows(mil::Tensor& in, int col, const float* rows, int T, int C);
// in[c, col + o] = W[o·C + c]: a weight W[OC][C] staged as M = Wᵀ (the program computes W·x).
void put_transposed(mil::Tensor& in, int col, const float* W, int OC, int C);
// in[c, col + o] = W[c·OC + o]: a weight W[C][OC] staged as stored (the program computes Wᵀ·x).
void put_as_stored(mil::Tensor& in, int col, const float* W, int C, int OC);
// in[c, col] = v[c] for c < n.
void put_column(mil::Tensor& in, int col, const float* v, int n);
// in[ch0 + c, t] = rows[t·C + c]: T rows into a channel block of an input [1, Ctot, 1, W ≥ T].
void put_channels(mil::Tensor& in, int ch0, const float* rows, int T, int C);
// rows[t·C + c] = out[ch0 + c, t]: a channel block of an output [1, Ctot, 1, W ≥ T] back to rows.
void get_channels(const mil::Tensor& out, int ch0, float* rows, int T, int C);

// Heads as the attention programs lay them out: `src_heads` heads of `hd` values per row on the
// CPU; in the program every query head has its own copy (repeat = Hq/Hkv for k and v, 1 for q),
// each `hd_pad` channels wide (zeros after hd).
struct HeadLayout {
  int src_heads, repeat, hd, hd_pad;
  int heads() const { return src_heads * repeat; }
};
// Rows [T, src_heads·hd] into channels from ch0, each source head repeated `repeat` times.
void put_heads(mil::Tensor& in, int ch0, const float* rows, int T, const HeadLayout& h);
// Back to rows, summing the `repeat` copies of each head in fp32 (the gradient of put_heads).
void get_heads(const mil::Tensor& out, int ch0, float* rows, int T, const HeadLayout& h);
// Back to rows from the first copy of each head (values the copies share).
void get_first_heads(const mil::Tensor& out, int ch0, float* rows, int T, const HeadLayout& h);

}  // namespace anetrain::ane
