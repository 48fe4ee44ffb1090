// Row-by-row products of packed weights with one activation row, shared by the cpu backend's
// linear_fwd_packed (rows of one product spread over threads) and its fused decode layer (all of
// a layer's products inside one parallel region). Kernels and the reasons for their shapes are
// in packed_linear.cpp.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "contract/packed.h"

namespace anetrain {

// An activation row set in the form a weight format's kernel reads: the floats themselves for
// f32 and bf16 weights; for Q8_0, quantized per group (and offset by 128 for vpdpbusd).
struct PackedActivation {
  std::vector<int8_t> q;
  std::vector<uint8_t> u;
  std::vector<float> scales;
  const float* x = nullptr;
  int cols = 0, group = 0;
  // Grows the buffers to the largest use and then keeps them (no allocation per token).
  void prepare(const float* rows, int n_rows, int row_width, WeightFormat fmt, int q8_group);
  // Room for `values` quantized in groups of at least `min_group`, so that prepare() will not
  // allocate (inside a parallel region, where an exception could not be caught).
  void reserve(size_t values, int min_group);
};

// The activation quantizer prepare() runs for Q8_0 groups of `group`: "neon" (aarch64, group a
// multiple of 16) or "reference" (contract/packed.h's quantize_q8_0); the same bits either way.
const char* q8_quantizer_kernel(int group);

// The dot-product kernel for one format and group, chosen once at run time by the CPU's features.
class RowDot {
 public:
  explicit RowDot(const MatrixRef& shape_of_all_parts);
  // Rows [r0, r1) of M (a matrix of the format given at construction) · activation row n into
  // out[0, r1 − r0).
  void rows(const MatrixRef& M, int r0, int r1, const PackedActivation& a, int n, float* out) const;
  // The kernel chosen, e.g. "f32_avx512", "bf16_neon", "q8_vnni_g32", "q8_dotprod", "q8_portable".
  const char* kernel() const;

 private:
  enum class Q8Kernel { scalar, vnni_g32, vnni_only64, vnni_g64, neon, dotprod };
  WeightFormat fmt_;
  bool avx512_;
  Q8Kernel q8_ = Q8Kernel::scalar;
};

// The rows of a fused product's parts numbered one after another (Q, K, V; gate, up), so that
// threads can divide them as one range.
struct StackedRows {
  int start[4] = {0, 0, 0, 0};
  int parts = 0, total = 0;
  StackedRows(const MatrixRef* W, int n) : parts(n) {
    for (int p = 0; p < n; ++p) start[p] = total, total += W[p].rows;
  }
  // fn(part, first row, end row) for each part's share of stacked rows [b, e), in order.
  template <class Fn>
  void each_part(int b, int e, Fn fn) const {
    for (int row = b; row < e;) {
      int p = parts - 1;
      while (start[p] > row) --p;
      const int stop = p + 1 < parts ? std::min(e, start[p + 1]) : e;
      fn(p, row - start[p], stop - start[p]);
      row = stop;
    }
  }
};

// From this many activation rows (a prompt's chunk) linear_fwd_packed multiplies bf16 weights by
// the activations rounded to bf16 on the GEMM training uses, where the CPU has bf16 products.
constexpr int kBf16GemmRows = 16;

// How linear_fwd_packed multiplies N activation rows by Q8_0 weights: the row kernels (decoding,
// up to kQ8TiledRows rows, or a CPU without AVX512-VNNI or FEAT_DotProd), AMX-INT8 tiles,
// AVX512-VNNI register tiles, or on aarch64 register tiles of SDOT or (FEAT_I8MM) SMMLA — by the
// CPU's level as core/cpu_features.h lowers it.
constexpr int kQ8TiledRows = 4;
enum class Q8Prefill { rows, amx_tiles, vnni_tiles, sdot_tiles, smmla_tiles };
Q8Prefill q8_prefill_path(const MatrixRef& W, int N);

// Refuses parts that cannot share one fused product (width, format, group) or a Q8_0 group that
// does not divide the width; `what` names the caller in the message.
void check_fused_parts(const MatrixRef* W, int parts, const char* what);

}  // namespace anetrain
