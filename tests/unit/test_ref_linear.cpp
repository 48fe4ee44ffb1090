// The oracle's linear products: every output is one float64 sum of its terms in ascending order,
// rounded to float once — bit for bit what one dot product at a time gives. ref computes them a
// row of sums at a time (so its loads run along memory); this holds that to the plain definition
// on odd shapes and a model-width one, for y = x·Wᵀ, dx (written and accumulated) and dW (+=).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "contract/registry.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

struct LinearShape {
  int N, in, out;
};
constexpr LinearShape kLinearShapes[] = {{1, 1, 1}, {3, 7, 5}, {17, 33, 65}, {4, 1024, 96}};

// The bits of two float arrays are equal (EXPECT_EQ on floats would also pass -0 == +0).
void expect_same_bits(const char* what, const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  size_t differ = 0, first = 0;
  for (size_t k = 0; k < got.size(); ++k)
    if (std::memcmp(&got[k], &want[k], sizeof(float)) != 0 && differ++ == 0) first = k;
  EXPECT_EQ(differ, 0u) << what << ": " << differ << " of " << got.size() << " outputs differ, first at " << first
                        << " (" << got[first] << " vs " << want[first] << ")";
}

TEST(RefLinear, EveryOutputIsOneOrderedFloat64Sum) {
  auto ref = make_backend("ref");
  uint64_t seed = 1;
  for (const LinearShape& s : kLinearShapes) {
    SCOPED_TRACE("N=" + std::to_string(s.N) + " in=" + std::to_string(s.in) + " out=" + std::to_string(s.out));
    const size_t nx = size_t(s.N) * s.in, nw = size_t(s.out) * s.in, ny = size_t(s.N) * s.out;
    const std::vector<float> x = random_vec(nx, seed++), W = random_vec(nw, seed++), dy = random_vec(ny, seed++),
                             dx0 = random_vec(nx, seed++), dW0 = random_vec(nw, seed++);
    std::vector<float> y(ny), want_y(ny);
    ref->linear_fwd(x.data(), W.data(), y.data(), s.N, s.in, s.out);
    for (int n = 0; n < s.N; ++n)
      for (int o = 0; o < s.out; ++o) {
        double acc = 0;
        for (int i = 0; i < s.in; ++i) acc += double(x[size_t(n) * s.in + i]) * W[size_t(o) * s.in + i];
        want_y[size_t(n) * s.out + o] = float(acc);
      }
    expect_same_bits("y", y, want_y);
    for (bool accumulate : {false, true}) {
      std::vector<float> dx = dx0, want_dx(nx);
      ref->linear_bwd_x(dy.data(), W.data(), dx.data(), s.N, s.in, s.out, accumulate);
      for (int n = 0; n < s.N; ++n)
        for (int i = 0; i < s.in; ++i) {
          double acc = accumulate ? dx0[size_t(n) * s.in + i] : 0.0;
          for (int o = 0; o < s.out; ++o) acc += double(dy[size_t(n) * s.out + o]) * W[size_t(o) * s.in + i];
          want_dx[size_t(n) * s.in + i] = float(acc);
        }
      expect_same_bits(accumulate ? "dx (accumulated)" : "dx", dx, want_dx);
    }
    std::vector<float> dW = dW0, want_dW = dW0;
    ref->linear_bwd_w(dy.data(), x.data(), dW.data(), s.N, s.in, s.out);
    for (int o = 0; o < s.out; ++o)
      for (int i = 0; i < s.in; ++i) {
        double acc = 0;
        for (int n = 0; n < s.N; ++n) acc += double(dy[size_t(n) * s.out + o]) * x[size_t(n) * s.in + i];
        want_dW[size_t(o) * s.in + i] += float(acc);
      }
    expect_same_bits("dW", dW, want_dW);
  }
}

}  // namespace
}  // namespace anetrain::test
