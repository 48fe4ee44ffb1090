// Matrix products of the cpu backend on oneDNN's matmul, which picks its kernel at run time for
// the machine it runs on (AMX, avx512_core_bf16, avx512_core, avx2). bf16 inputs accumulate in
// fp32 and write fp32; fp32 inputs stay fp32 throughout.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/dtype.h"

namespace anetrain {

// bf16 where this CPU multiplies bf16 natively (AVX512_BF16 or AMX-BF16), else fp32.
Precision default_precision();
// oneDNN's name for the instruction set it dispatches to here ("avx512_core_bf16", ...).
std::string gemm_isa();

// C(M,N) (= or +=) op(A)(M,K) · op(B)(K,N), all row-major and dense. A is (M,K) or, when
// a_trans, stored (K,M); B is (K,N) or, when b_trans, stored (N,K) — which is how a linear
// layer's W[out,in] enters y = x·Wᵀ without a copy.
class Gemm {
 public:
  Gemm();
  ~Gemm();
  void f32(const float* A, bool a_trans, const float* B, bool b_trans, float* C, int M, int N, int K, bool accumulate);
  // Where the library has no bf16 product for this CPU (oneDNN below AVX-512, or BLAS alone), the
  // operands are widened to fp32 first: the same products, accumulated in fp32 in another order.
  void bf16(const uint16_t* A, bool a_trans, const uint16_t* B, bool b_trans, float* C, int M, int N, int K,
            bool accumulate);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// fp32 → bf16, round to nearest even (core/dtype.h's rule), threaded over n.
void to_bf16(const float* src, uint16_t* dst, size_t n);
// bf16 → fp32, exact (a bf16 value is an fp32 value with the low 16 bits zero), threaded over n.
void widen_bf16(const uint16_t* src, float* dst, size_t n);
// Gemm::bf16 where the library has no bf16 product: A (a_n values) and B (b_n) widened into the
// caller's buffers, which keep their size between calls (the shapes of a run repeat).
void widen_operands(const uint16_t* A, size_t a_n, const uint16_t* B, size_t b_n, std::vector<float>& a_wide,
                    std::vector<float>& b_wide);

}  // namespace anetrain
