// Implementation of the kernel-test helpers declared in op_test_util.h.
#include "op_test_util.h"

#include "core/error.h"
#include "contract/registry.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

namespace anetrain::test {

namespace {
// An unusual bit pattern (a quiet NaN with a payload) rather than a value: no kernel computes it,
// and comparing bits, not floats, sees it even though NaN ≠ NaN.
constexpr uint32_t kSentinelBits = 0x7fc0beefu;

float sentinel() {
  float f;
  std::memcpy(&f, &kSentinelBits, sizeof f);
  return f;
}

bool is_sentinel(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b == kSentinelBits;
}
}  // namespace

void fill_uniform(float* p, size_t n, Rng& rng, float lo, float hi) {
  const double span = double(hi) - lo;
  for (size_t i = 0; i < n; ++i) p[i] = float(lo + span * rng.uniform());
}

std::vector<float> random_vec(size_t n, uint64_t seed, float lo, float hi) {
  std::vector<float> v(n);
  Rng rng(seed);
  fill_uniform(v.data(), n, rng, lo, hi);
  return v;
}

std::vector<int32_t> random_tokens(size_t n, int V, uint64_t seed) {
  Rng rng(seed);
  const uint64_t pool = std::max<uint64_t>(1, std::min<uint64_t>(uint64_t(V), n / 2 + 1));
  std::vector<int32_t> t(n);
  for (auto& id : t) id = int32_t(rng.below(pool));
  if (n >= 2) t.back() = t.front();
  // One id from the far end of the table too, so row offsets of large ids are exercised.
  if (n >= 3) t[n / 2] = V - 1;
  return t;
}

Guarded::Guarded(size_t n, float fill) : n_(n), buf_(n + 2 * kGuard, sentinel()) {
  std::fill(data(), data() + n_, fill);
}

Guarded::Guarded(const std::vector<float>& init) : Guarded(init.size()) { std::copy(init.begin(), init.end(), data()); }

::testing::AssertionResult Guarded::intact(const std::string& what) const {
  for (size_t i = 0; i < kGuard; ++i) {
    if (!is_sentinel(buf_[i]))
      return ::testing::AssertionFailure() << what << ": write before the start, at index " << (long(i) - long(kGuard))
                                           << " (value " << buf_[i] << ")";
    const size_t j = kGuard + n_ + i;
    if (!is_sentinel(buf_[j]))
      return ::testing::AssertionFailure()
             << what << ": write past the end, at index " << (n_ + i) << " of " << n_ << " (value " << buf_[j] << ")";
  }
  return ::testing::AssertionSuccess();
}

double max_abs(const float* p, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(double(p[i])));
  return m;
}

::testing::AssertionResult all_close(const std::string& what, const float* got, const float* want, size_t n,
                                     double rel_tol) {
  const double scale = std::max(1.0, max_abs(want, n));
  double worst = -1;
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    const double g = got[i], w = want[i];
    double err = std::fabs(g - w);
    if (!std::isfinite(g) && std::isfinite(w)) err = INFINITY;
    if (err > worst) {
      worst = err;
      at = i;
    }
    if (err == INFINITY) break;
  }
  if (n == 0 || worst <= rel_tol * scale) return ::testing::AssertionSuccess();
  std::ostringstream os;
  os.precision(9);
  os << what << ": max |got - want| = " << worst << " at index " << at << " of " << n << " (got " << got[at]
     << ", want " << want[at] << "), bound " << rel_tol << " x " << scale;
  return ::testing::AssertionFailure() << os.str();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<std::string> tested_backends() {
  std::vector<std::string> out;
  for (const BackendEntry& e : backend_table())
    if (e.make && e.name != "ref" && (e.listed || !e.users_ask.empty())) out.emplace_back(e.name);
  return out;
}

std::vector<std::string> ref_and_tested_backends() {
  std::vector<std::string> names = tested_backends();
  names.insert(names.begin(), "ref");
  return names;
}

}  // namespace anetrain::test
