// Inference weights in the format they are stored in: fp32, bf16, or Q8_0 (symmetric int8 in
// groups of `group` values along a row, one fp32 scale per group: llama2.c version 2 / runq.c and
// GGUF Q8_0). Decoding is bound by reading the weights once per token, so the matrix–vector
// products read them in this form instead of an fp32 copy.
//
// Q8_0 products are W8A8: the activation row is quantized per group at run time exactly as the
// weights are (scale = max|x| / 127, q = round-half-away(x / scale)), each group's integer dot
// product is exact, and y = Σ_groups float(Σ qx·qw) · sx · sw.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace anetrain {

enum class WeightFormat : uint8_t { f32, bf16, q8_0 };
std::string weight_format_name(WeightFormat f);          // "f32", "bf16", "q8_0"
WeightFormat parse_weight_format(const std::string& s);  // throws Error naming the choices

// A [rows, cols] row-major matrix in one of the formats. For q8_0, `data` holds rows·cols int8
// values and `scales` rows·cols/group floats (row r's groups at r·cols/group); cols % group == 0.
struct MatrixRef {
  WeightFormat format = WeightFormat::f32;
  const void* data = nullptr;
  const float* scales = nullptr;
  int rows = 0, cols = 0, group = 0;
  size_t bytes() const;  // what one pass over the matrix reads
};

// An activation (or weight) row set quantized per group, runq.c's rule: scale = max|x| / 127,
// q = round(x / scale) (0 for an all-zero group).
void quantize_q8_0(const float* x, size_t n, int group, int8_t* q, float* scales);

// GGUF's Q8_0 block (32 values, an f16 scale): the scale is rounded to f16 first and the values
// quantized against that rounded scale (clamped to ±127), so that q · scale is what any reader
// dequantizes and a write → read round trip is bit-exact. `scales` receives the f16 values as floats.
void quantize_q8_0_f16_scales(const float* x, size_t n, int8_t* q, float* scales);

// Row r of W in fp32 (embedding lookup from a packed table).
void dequantize_row(const MatrixRef& W, int r, float* out);

// The reference products, accumulating in double: y_p(N, rows_p) = x(N, cols) · W_pᵀ for each of
// `parts` matrices sharing x (a fused QKV or gate–up product). Q8_0 follows the W8A8 rule above
// (the quantized activation is what the fast kernels must reproduce bit for bit). For bf16, a
// backend may round a prompt chunk's activations to bf16 first, as bf16 training's products do;
// such a product is the reference's on the rounded activations.
void packed_linear_ref(const float* x, int N, const MatrixRef* W, float* const* y, int parts);

}  // namespace anetrain
