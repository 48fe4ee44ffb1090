// Shared helpers for the kernel tests: seeded random data, a max-abs-error comparison whose
// failure message names the op, the case and the worst element, and guarded buffers that
// detect writes past either end of an output (kernels take raw pointers, so an off-by-one in a
// loop bound would otherwise corrupt a neighbouring allocation silently).
#pragma once
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "core/rng.h"

namespace anetrain::test {

// Uniform in [lo, hi), driven by anetrain::Rng so a seed gives the same data on every platform.
void fill_uniform(float* p, size_t n, Rng& rng, float lo, float hi);
std::vector<float> random_vec(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);
// Token ids in [0, V). At least the first and last entries are equal whenever n ≥ 2, and ids
// are drawn from a small prefix of the vocabulary so that repeats are common: scatter-add
// backwards must sum them rather than keep the last.
std::vector<int32_t> random_tokens(size_t n, int V, uint64_t seed);

// A float buffer with kGuard sentinel floats before and after the n usable ones.
class Guarded {
 public:
  static constexpr size_t kGuard = 16;  // a whole 64-byte line on each side keeps data() aligned
  Guarded() = default;
  explicit Guarded(size_t n, float fill = 0.0f);
  Guarded(const std::vector<float>& init);  // NOLINT: implicit on purpose, copies init
  float* data() { return buf_.data() + kGuard; }
  const float* data() const { return buf_.data() + kGuard; }
  size_t size() const { return n_; }
  float& operator[](size_t i) { return data()[i]; }
  float operator[](size_t i) const { return data()[i]; }
  std::vector<float> vec() const { return std::vector<float>(data(), data() + n_); }
  // Failure names `what` and the first overwritten sentinel (negative = before the start).
  ::testing::AssertionResult intact(const std::string& what) const;

 private:
  size_t n_ = 0;
  std::vector<float> buf_;
};

// max|got − want| ≤ rel_tol · max(1, max|want|). The scale is the whole tensor's, not each
// element's: rounding differences come from sums whose terms are of the tensor's magnitude, so an
// element that cancels to near zero may carry an absolute error of that magnitude's order.
// NaN/Inf in `got` where `want` is finite always fails.
::testing::AssertionResult all_close(const std::string& what, const float* got, const float* want, size_t n,
                                     double rel_tol);
inline ::testing::AssertionResult all_close(const std::string& what, const Guarded& got, const Guarded& want,
                                            double rel_tol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << want.size();
  return all_close(what, got.data(), want.data(), got.size(), rel_tol);
}

double max_abs(const float* p, size_t n);

// The message of the anetrain::Error that f throws; "" when it throws none.
std::string error_of(const std::function<void()>& f);

// Every backend built into this binary except ref (the oracle), from the registry's table: the
// listed ones and the variants users reach through options (cpu-bf16, --precision bf16's
// backend). What the contract tests run against ref; a new backend's table line adds it here.
std::vector<std::string> tested_backends();
// The same with ref first: for tests that hold every backend, the oracle included, to one property.
std::vector<std::string> ref_and_tested_backends();

// gtest parameter name for a (backend, case) pair: "cpu_bf16_stories110m".
template <class Case>
std::string backend_case_name(const ::testing::TestParamInfo<std::tuple<std::string, Case>>& info) {
  std::string n = std::get<0>(info.param) + "_" + std::get<1>(info.param).name;
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

}  // namespace anetrain::test
