// Adapter dropout's mask (core/dropout_mask.h) and its application (contract/adapter_dropout.cpp):
// the generator gives the values its numpy twin in tests/reference/lora_reference.py gives (the
// same literals are asserted by lora_reference_selfcheck.py), drops the asked-for fraction within
// a binomial bound, draws a different mask for every layer, projection, step and micro-batch, and
// a masked input holds exactly the kept elements and exact zeros.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "contract/stages.h"
#include "core/dropout_mask.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

TEST(AdapterDropoutMask, KnownValuesSharedWithThePythonReference) {
  EXPECT_EQ(splitmix64(0), 0xE220A8397B1DCDAFull);  // splitmix64's first output from state 0
  const uint64_t key = dropout_micro_batch_key(42, 7, 3);
  EXPECT_EQ(key, 17680642119211242809ull);
  const uint64_t stream = dropout_projection_stream(key, 2, 5);
  EXPECT_EQ(stream, 3431889319213704408ull);
  const double want[] = {0x1.5d5c1aed86e7cp-3, 0x1.8b37aa74101dep-2, 0x1.b6c682fc9e1c8p-3, 0x1.ac771a00614f8p-4};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(dropout_uniform(stream, uint64_t(i)), want[i]) << "element " << i;
  EXPECT_EQ(dropout_projection_stream(dropout_micro_batch_key(0, 1, 0), 0, 0), 17990875778844135198ull);
}

// The fraction of n elements of `stream` that p drops.
double dropped_fraction(uint64_t stream, size_t n, double p) {
  size_t dropped = 0;
  for (size_t i = 0; i < n; ++i) dropped += !dropout_keeps(stream, i, p);
  return double(dropped) / double(n);
}

TEST(AdapterDropoutMask, DropsTheAskedFractionWithinABinomialBound) {
  const size_t n = 200000;
  for (double p : {0.05, 0.1, 0.3, 0.5, 0.9})
    for (int projection = 0; projection < 7; ++projection) {
      const uint64_t stream = dropout_projection_stream(dropout_micro_batch_key(1234, 5, 1), 3, projection);
      const double sigma = std::sqrt(p * (1 - p) / double(n));
      // 5σ: a false failure about once in 1.7 million; a biased generator (say 0.5% off) fails.
      EXPECT_NEAR(dropped_fraction(stream, n, p), p, 5 * sigma) << "p " << p << ", projection " << projection;
    }
  EXPECT_EQ(dropped_fraction(dropout_projection_stream(7, 0, 0), 10000, 0.0), 0.0);  // p = 0 keeps all
}

// How many of n elements two streams' masks (at p = 0.5) disagree on: about n/2 when independent.
size_t disagreements(uint64_t s1, uint64_t s2, size_t n) {
  size_t d = 0;
  for (size_t i = 0; i < n; ++i) d += dropout_keeps(s1, i, 0.5) != dropout_keeps(s2, i, 0.5);
  return d;
}

TEST(AdapterDropoutMask, EveryLayerProjectionStepAndMicroBatchDrawsItsOwnMask) {
  const size_t n = 20000;
  const double sigma = std::sqrt(0.25 * double(n));
  const uint64_t key = dropout_micro_batch_key(42, 10, 0);
  const uint64_t base = dropout_projection_stream(key, 1, 0);
  const uint64_t others[] = {
      dropout_projection_stream(key, 1, 1),                                  // k beside q (same input)
      dropout_projection_stream(key, 1, 2),                                  // v
      dropout_projection_stream(key, 2, 0),                                  // the next layer
      dropout_projection_stream(dropout_micro_batch_key(42, 11, 0), 1, 0),   // the next step
      dropout_projection_stream(dropout_micro_batch_key(42, 10, 1), 1, 0),   // the next micro-batch
      dropout_projection_stream(dropout_micro_batch_key(43, 10, 0), 1, 0)};  // another run seed
  for (uint64_t other : others) EXPECT_NEAR(double(disagreements(base, other, n)), n / 2.0, 5 * sigma);
  EXPECT_EQ(disagreements(base, dropout_projection_stream(key, 1, 0), n), 0u);  // and the same one again
}

TEST(AdapterDropoutMask, MaskedInputHoldsTheKeptElementsAndExactZeros) {
  const int N = 9, in = 37;
  std::vector<float> scratch(size_t(N) * in), dummy(1);
  LayerAdapters L{};
  L.rank = 2, L.scale = 3.0f;
  L.wq = L.wk = Adapter{dummy.data(), dummy.data()};
  L.dropout = AdapterDropout{0.25, 99, 4, scratch.data()};
  EXPECT_EQ(adapter_projection(L, L.wq), 0);
  EXPECT_EQ(adapter_projection(L, L.w_down), 6);
  EXPECT_FLOAT_EQ(adapter_scale(L), 4.0f);  // 3 / (1 − 0.25): the mask's 1/(1 − p) in the scale
  const std::vector<float> x = random_vec(size_t(N) * in, 5, -1.0f, -0.1f);  // negative: x·0 would be −0
  std::vector<float> xq(x.size()), xk(x.size()), acc(x.size(), 1.0f);
  apply_adapter_dropout(L, L.wq, x.data(), xq.data(), N, in, false);
  apply_adapter_dropout(L, L.wk, x.data(), xk.data(), N, in, false);
  apply_adapter_dropout(L, L.wq, x.data(), acc.data(), N, in, true);
  const uint64_t q = dropout_projection_stream(99, 4, 0);
  size_t q_dropped = 0, differ = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const bool keep = dropout_keeps(q, i, 0.25);
    const float want = keep ? x[i] : 0.0f;
    ASSERT_EQ(std::memcmp(&xq[i], &want, sizeof(float)), 0) << "element " << i;  // +0, not −0
    ASSERT_EQ(acc[i], keep ? 1.0f + x[i] : 1.0f) << "element " << i;
    q_dropped += !keep;
    differ += (xq[i] == 0.0f) != (xk[i] == 0.0f);
  }
  EXPECT_GT(q_dropped, 0u);
  EXPECT_GT(differ, 0u);  // q and k share x, not its mask
  L.dropout.p = 0;
  EXPECT_EQ(adapter_scale(L), 3.0f);
}

}  // namespace
}  // namespace anetrain::test
