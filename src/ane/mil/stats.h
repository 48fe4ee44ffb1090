// What a program costs: op count, FLOPs (2·M·N·K for each matmul and conv, one per element for
// the elementwise ops), and the bytes its I/O surfaces and weight blobs hold.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ane/mil/program.h"

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

}  // namespace anetrain::mil
