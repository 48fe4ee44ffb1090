// cpu linear layer: the three products of y = x·Wᵀ, on oneDNN's matmul in both precisions. fp32:
// oneDNN measured 0.9–1.2× OpenBLAS's time on the six stories110m shapes (faster on five) and a
// stories110m fp32 step 1,037–1,144 vs 1,074–1,265 ms, and it dispatches per CPU at run time.
// bf16: bf16 copies of both operands, accumulating in fp32 into the fp32 output.

#include <algorithm>
#include <chrono>
#include <vector>

#include "backends/cpu/cpu_backend.h"

namespace anetrain {

Capabilities CpuBackend::caps() {
  Capabilities c;
  c.precision = precision_;
  c.profiler = this;
  if (precision_ == Precision::bf16) {
    c.weight_mirror = this;
    // Rounding both inputs to 8 mantissa bits moves each term by ≤ 2⁻⁸ relative; over K
    // random-sign terms a product drifts by ~2⁻⁸·√K·|term|. Measured against ref at the odd and
    // real shapes: ≤ 2.9e-3 of the output's scale for one product, ≤ 1.1e-2 for a block's
    // gradients (which chain three to five products). The bound for bf16 is 2e-2.
    c.numerics.linear_rtol = 1e-2;
    c.numerics.stage_rtol = 2e-2;
  }
  return c;
}

double CpuBackend::matrix_peak_gflops() {
  // 512×1024·1024×1024 straight into oneDNN (operands already in the product's precision): ~1 GFLOP
  // each, a few ms — best of three after a warm-up at an eighth of the rows, once per run, before
  // the first step. A CPU that takes over a quarter second for one stops after it (an emulated
  // one runs ~0.25 GFLOP/s: four full products were 16 s of every run's start under qemu).
  constexpr int M = 512, K = 1024, N = 1024;
  constexpr double kEnoughSeconds = 0.25;
  std::vector<float> a(size_t(M) * K, 0.5f), b(size_t(N) * K, 0.25f), c(size_t(M) * N);
  std::vector<uint16_t> a16(a.size()), b16(b.size());
  to_bf16(a.data(), a16.data(), a.size());
  to_bf16(b.data(), b16.data(), b.size());
  auto product = [&](int rows) {
    if (precision_ == Precision::bf16) gemm_.bf16(a16.data(), false, b16.data(), true, c.data(), rows, N, K, false);
    else gemm_.f32(a.data(), false, b.data(), true, c.data(), rows, N, K, false);
  };
  product(M / 8);
  double best = 0, spent = 0;
  for (int rep = 0; rep < 3 && spent < kEnoughSeconds; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    product(M);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spent += s;
    if (s > 0) best = std::max(best, 2.0 * M * N * K / s / 1e9);
  }
  return best;
}

void CpuBackend::sync_weights(const WeightsView& w) { weights_ = w; }

namespace {
// A model whose bf16 copy would pass this converts each weight right before its product instead:
// one more streaming pass over the weights per step (~5% of a qwen3-0.6b step) for 1.2 GB less
// memory. Both round the same way, so results are bit-identical.
constexpr size_t kMirrorMaxBytes = size_t(512) << 20;
}  // namespace

uint16_t* CpuBackend::bf16_copy(const WeightsView& w) {
  if (precision_ != Precision::bf16 || w.count * sizeof(uint16_t) > kMirrorMaxBytes) return nullptr;
  mirror_.resize(w.count);
  mirror_version_ = 0;  // no version's copy until the caller says it filled it
  return mirror_.data();
}

const uint16_t* CpuBackend::bf16_weight(const float* W, size_t n) {
  if (!weights_.contains(W, n) || weights_.count * sizeof(uint16_t) > kMirrorMaxBytes)
    return bf16_activation(W, n, 2);
  if (mirror_version_ != weights_.version || mirror_.size() != weights_.count) {
    // Once per optimizer step: the whole arena at once is one streaming pass over memory.
    mirror_.resize(weights_.count);
    to_bf16(weights_.data, mirror_.data(), weights_.count);
    mirror_version_ = weights_.version;
    ++mirror_conversions_;
  }
  return mirror_.data() + (W - weights_.data);
}

namespace {

constexpr int kSmallRows = 4;  // up to here a product is a matrix-vector one (see below)

// y(N,out) = x(N,in)·Wᵀ for a few rows (decoding: N = 1): a matrix-vector product is bound by
// reading W once, so each thread streams a contiguous band of W's rows against the N input rows
// held in cache. oneDNN's matmul at M = 1 decoded stories110m at 39 tokens/s, this at 63–65.
void small_rows_fwd(const float* x, const float* W, float* y, int N, int in, int out) {
  // One row at a time, each a single forward stream through memory: four interleaved row streams
  // per thread measured slower (49–54 vs 63–65 tokens/s on stories110m).
#pragma omp parallel for schedule(static)
  for (int o = 0; o < out; ++o) {
    const float* w = W + size_t(o) * in;
    for (int n = 0; n < N; ++n) {
      const float* xn = x + size_t(n) * in;
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int i = 0; i < in; ++i) s += w[i] * xn[i];
      y[size_t(n) * out + o] = s;
    }
  }
}

}  // namespace

const uint16_t* CpuBackend::bf16_activation(const float* x, size_t n, int slot) {
  auto& buf = scratch_[slot];
  if (buf.size() < n) buf.resize(n);
  to_bf16(x, buf.data(), n);
  return buf.data();
}

void CpuBackend::linear_fwd(const float* x, const float* W, float* y, int N, int in, int out) {
  if (precision_ == Precision::bf16) {
    const uint16_t* w16 = bf16_weight(W, size_t(out) * in);
    gemm_.bf16(bf16_activation(x, size_t(N) * in, 0), false, w16, true, y, N, out, in, false);
    return;
  }
  if (N <= kSmallRows) {
    small_rows_fwd(x, W, y, N, in, out);
    return;
  }
  gemm_.f32(x, false, W, true, y, N, out, in, false);
}

void CpuBackend::linear_bwd_x(const float* dy, const float* W, float* dx, int N, int in, int out, bool accumulate) {
  if (precision_ == Precision::bf16) {
    const uint16_t* w16 = bf16_weight(W, size_t(out) * in);
    gemm_.bf16(bf16_activation(dy, size_t(N) * out, 0), false, w16, false, dx, N, in, out, accumulate);
    return;
  }
  gemm_.f32(dy, false, W, false, dx, N, in, out, accumulate);
}

void CpuBackend::linear_bwd_w(const float* dy, const float* x, float* dW, int N, int in, int out) {
  if (precision_ == Precision::bf16) {
    const uint16_t* dy16 = bf16_activation(dy, size_t(N) * out, 0);
    gemm_.bf16(dy16, true, bf16_activation(x, size_t(N) * in, 1), false, dW, out, in, N, true);
    return;
  }
  gemm_.f32(dy, true, x, false, dW, out, in, N, true);
}

}  // namespace anetrain
