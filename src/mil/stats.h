// What a program costs: op count, FLOPs (2·M·N·K for each matmul and conv, one per element for
// the elementwise ops), the bytes its I/O surfaces and weight blobs hold, and the memory running
// it takes. Every pass is linear in the program's size.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mil/program.h"

namespace anetrain::mil {

struct ProgramStats {
  int ops = 0;  // excluding consts
  int consts = 0;
  std::map<std::string, int> by_kind;
  double matrix_flops = 0;  // matmul + conv + attention products
  double other_flops = 0;   // elementwise, reductions, softmax
  uint64_t input_bytes = 0, output_bytes = 0, blob_bytes = 0;
};

ProgramStats program_stats(const Program& p);

// Every matmul and conv of a program as a GEMM: `batch` products of (m×k)·(k×n).
struct MatrixProduct {
  int64_t batch, m, n, k;
};
std::vector<MatrixProduct> matrix_products(const Program& p);

// The memory a program needs. ane-sim holds every tensor as fp32 and frees a computed value after
// its last reader (values nobody reads stay to the end, as SimModel::plan does), so its peak is
// the inputs and constants plus the most computed values alive at once.
struct MemoryCost {
  double value_bytes = 0;     // every value the ops compute, at its declared element size
  double largest_bytes = 0;   // the largest single tensor (input, constant or computed), as fp32
  std::string largest;        // its variable name
  Type largest_type;
  double sim_peak_bytes = 0;  // ane-sim's peak, fp32
};
MemoryCost memory_cost(const Program& p);

// The default of `mil check` / `mil run --max-bytes`: ane-sim's peak past this is refused before
// anything is allocated. 4 GiB runs every training kernel of the largest preset several times over.
constexpr uint64_t kDefaultMaxBytes = uint64_t(4) << 30;

}  // namespace anetrain::mil
