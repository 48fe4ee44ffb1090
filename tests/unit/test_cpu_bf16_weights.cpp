// cpu-bf16's weight copy: a weight inside the arena given to sync_weights is read from the bf16
// copy made for that version, anything else is converted per call; both must give the same bits,
// and the copy must follow the weights when their version moves (it is rebuilt, not patched).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kernels/backend.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

TEST(CpuBf16Weights, CopyFollowsTheVersionAndMatchesPerCallConversion) {
  auto be = make_backend("cpu-bf16");
  const int N = 9, in = 48, out = 40;
  // An arena with two matrices; the product reads the second, at a non-zero offset.
  std::vector<float> arena = random_vec(size_t(out) * in * 2, 1);
  const float* W = arena.data() + size_t(out) * in;
  const std::vector<float> x = random_vec(size_t(N) * in, 2);
  std::vector<float> y_arena(size_t(N) * out), y_loose(size_t(N) * out);
  auto run = [&](uint64_t version) {
    be->sync_weights({arena.data(), arena.size(), version});
    be->linear_fwd(x.data(), W, y_arena.data(), N, in, out);
    const std::vector<float> loose(W, W + size_t(out) * in);  // the same values outside the arena
    be->linear_fwd(x.data(), loose.data(), y_loose.data(), N, in, out);
  };
  run(1);
  EXPECT_EQ(0, std::memcmp(y_arena.data(), y_loose.data(), sizeof(float) * y_arena.size()));
  const std::vector<float> before = y_arena;

  // New weights under a new version: the copy is rebuilt and the product follows them.
  for (size_t i = 0; i < arena.size(); ++i) arena[i] = -0.5f * arena[i] + 0.25f;
  run(2);
  EXPECT_EQ(0, std::memcmp(y_arena.data(), y_loose.data(), sizeof(float) * y_arena.size()));
  EXPECT_NE(0, std::memcmp(y_arena.data(), before.data(), sizeof(float) * y_arena.size()));

  // And the products are bf16 ones (not fp32 through another path): within bf16's bound of ref.
  auto ref = make_backend("ref");
  std::vector<float> y_ref(size_t(N) * out);
  ref->linear_fwd(x.data(), W, y_ref.data(), N, in, out);
  EXPECT_TRUE(all_close("cpu-bf16 arena product vs ref", y_arena.data(), y_ref.data(), y_ref.size(),
                        be->numerics().linear_rtol));
  EXPECT_FALSE(all_close("cpu-bf16 differs from fp32", y_arena.data(), y_ref.data(), y_ref.size(), 1e-6));
}

}  // namespace
}  // namespace anetrain::test
