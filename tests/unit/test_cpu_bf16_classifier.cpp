// cpu-bf16's classifier backward writes each vocabulary chunk's dlogits in bf16 as it makes them,
// where its products would otherwise each round an fp32 dlogits buffer to bf16. Both round the
// same fp32 values the same way, so the stage must equal, bit for bit, that composition: the
// chunk's logits by the backend's own linear_fwd, dlogits in fp32 by the same exp, then the
// backend's linear_bwd_x and linear_bwd_w — with one chunk (logits kept from the forward) and
// with several (each recomputed), with a trained and with a frozen classifier.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/fast_math.h"
#include "contract/registry.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

struct DlogitsCase {
  const char* name;
  int N, D, V, chunk;  // chunk: the backend's vocabulary chunk at this N and V (classifier.cpp)
};
// 4,100 × 4,096 logits pass the 16M-float limit for keeping them whole: 512-column chunks, the
// last one 4 columns wide.
const DlogitsCase kDlogitsCases[] = {{"one chunk", 37, 72, 1001, 1001}, {"chunked", 4100, 24, 4096, 512}};

bool dlogits_bits_equal(const std::vector<float>& a, const std::vector<float>& b, std::string& where) {
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      where = "element " + std::to_string(i) + ": " + std::to_string(a[i]) + " vs " + std::to_string(b[i]);
      return false;
    }
  return true;
}

TEST(CpuBf16Classifier, BackwardEqualsItsCompositionFromOps) {
  for (const auto& c : kDlogitsCases)
    for (bool frozen : {false, true}) {
      const std::string tag = std::string(c.name) + (frozen ? ", frozen" : ", trained");
      auto be = make_backend("cpu-bf16");
      ASSERT_EQ(be->classifier_scratch_floats(c.N, c.V), size_t(c.N) * c.chunk) << tag;
      const size_t N = c.N, D = c.D, V = c.V;
      const std::vector<float> xf = random_vec(N * D, 1), W = random_vec(V * D, 2, -0.5f, 0.5f);
      const std::vector<int32_t> targets = random_tokens(N, c.V, 3);
      const float scale = 0.37f;
      std::vector<float> losses(N), lse(N), scratch(be->classifier_scratch_floats(c.N, c.V));
      be->classifier_loss_fwd(xf.data(), W.data(), targets.data(), losses.data(), lse.data(), scratch.data(), c.N,
                              c.D, c.V);
      std::vector<float> dxf(N * D, 0.0f), dW = random_vec(V * D, 4);  // dW accumulates onto what is there
      std::vector<float> dxf_want = dxf, dW_want = dW;
      be->classifier_loss_bwd(xf.data(), W.data(), targets.data(), lse.data(), scale, dxf.data(),
                              frozen ? nullptr : dW.data(), scratch.data(), c.N, c.D, c.V);

      std::vector<float> dz(N * size_t(c.chunk));
      for (int v0 = 0; v0 < c.V; v0 += c.chunk) {
        const int w = std::min(c.chunk, c.V - v0);
        be->linear_fwd(xf.data(), W.data() + size_t(v0) * D, dz.data(), c.N, c.D, w);
        for (size_t n = 0; n < N; ++n) {
          float* z = dz.data() + n * w;
          for (int i = 0; i < w; ++i) z[i] = scale * exp_f32(z[i] - lse[n]);
          if (targets[n] >= v0 && targets[n] < v0 + w) z[targets[n] - v0] -= scale;
        }
        if (!frozen) be->linear_bwd_w(dz.data(), xf.data(), dW_want.data() + size_t(v0) * D, c.N, c.D, w);
        be->linear_bwd_x(dz.data(), W.data() + size_t(v0) * D, dxf_want.data(), c.N, c.D, w, v0 > 0);
      }
      std::string where;
      EXPECT_TRUE(dlogits_bits_equal(dxf, dxf_want, where)) << tag << " dxf differs at " << where;
      EXPECT_TRUE(dlogits_bits_equal(dW, dW_want, where)) << tag << " dW differs at " << where;
    }
}

}  // namespace
}  // namespace anetrain::test
