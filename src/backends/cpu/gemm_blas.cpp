// The cpu backend's matrix products on BLAS alone: the build where oneDNN is absent (arm64 Linux,
// where Debian's libdnnl-dev cannot be installed beside the host's, and macOS, where Accelerate's
// sgemm runs on the matrix coprocessor and oneDNN is optional). fp32 products go straight to
// cblas_sgemm; bf16 operands are widened to fp32 first, which is exact (a bf16 value is an fp32
// value with the low 16 bits zero), so the results are what a native bf16 product accumulating in
// fp32 gives, only in a different summation order.
#include <algorithm>
#include <vector>

#include "core/blas.h"
#include "backends/cpu/gemm.h"
#include "core/dtype.h"

namespace anetrain {

std::string gemm_isa() { return std::string("blas:") + ANETRAIN_BLAS_NAME; }

// Widening bf16 costs a pass over both operands and BLAS then multiplies fp32: never faster than
// fp32 training, so fp32 is the default wherever the products come from BLAS.
Precision default_precision() { return Precision::fp32; }

struct Gemm::Impl {
  std::vector<float> a_wide, b_wide;  // kept between calls: the shapes of a run repeat
};

Gemm::Gemm() : impl_(std::make_unique<Impl>()) {}
Gemm::~Gemm() = default;

void Gemm::f32(const float* A, bool a_trans, const float* B, bool b_trans, float* C, int M, int N, int K,
               bool accumulate) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: the answer is C or 0 (some BLAS reject a zero leading dimension)
    if (!accumulate) std::fill(C, C + size_t(M) * N, 0.0f);
    return;
  }
  cblas_sgemm(CblasRowMajor, a_trans ? CblasTrans : CblasNoTrans, b_trans ? CblasTrans : CblasNoTrans, M, N, K, 1.0f,
              A, a_trans ? M : K, B, b_trans ? K : N, accumulate ? 1.0f : 0.0f, C, N);
}

void Gemm::bf16(const uint16_t* A, bool a_trans, const uint16_t* B, bool b_trans, float* C, int M, int N, int K,
                bool accumulate) {
  widen_operands(A, size_t(M) * size_t(K), B, size_t(K) * size_t(N), impl_->a_wide, impl_->b_wide);
  f32(impl_->a_wide.data(), a_trans, impl_->b_wide.data(), b_trans, C, M, N, K, accumulate);
}

}  // namespace anetrain
