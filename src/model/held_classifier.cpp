#include "model/held_classifier.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace anetrain {

namespace {
// Vocabulary rows per chunk: 4096 rows of Qwen3's D = 1024 are 16 MB of fp32 weights, and at
// M = 512 rows 8 MB of logits; small next to the 622 MB the whole matrix would take.
constexpr int kChunkRows = 4096;

struct ChunkBuffers {
  std::vector<float> weights, logits;
};
ChunkBuffers& buffers() {
  thread_local ChunkBuffers b;
  return b;
}

// The chunk [v0, v0 + w) of the classifier in fp32 and its logits z (M, w) = xf · chunkᵀ.
float* chunk_logits(Backend& be, Model& m, const float* xf, int M, int v0, int w) {
  const int D = m.cfg.dim;
  ChunkBuffers& b = buffers();
  b.weights.resize(size_t(kChunkRows) * D);
  b.logits.resize(size_t(M) * kChunkRows);
  m.read_rows(m.classifier_spec(), size_t(v0), size_t(w), b.weights.data());
  be.linear_fwd(xf, b.weights.data(), b.logits.data(), M, D, w);
  return b.logits.data();
}
}  // namespace

void held_classifier_fwd(Backend& be, Model& m, const float* xf, const int32_t* targets, float* losses, float* lse,
                         int M) {
  const int V = m.cfg.vocab_size;
  std::vector<float> run_max(size_t(M), -INFINITY);
  std::vector<double> run_sum(size_t(M), 0.0);
  for (int v0 = 0; v0 < V; v0 += kChunkRows) {
    const int w = std::min(kChunkRows, V - v0);
    const float* z_all = chunk_logits(be, m, xf, M, v0, w);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < M; ++n) {
      const float* z = z_all + size_t(n) * w;
      const float mx = *std::max_element(z, z + w);
      double s = 0;
      for (int i = 0; i < w; ++i) s += std::exp(double(z[i]) - mx);
      if (targets[n] >= v0 && targets[n] < v0 + w) losses[n] = -z[targets[n] - v0];
      // Online log-sum-exp: rescale whichever running sum has the smaller max.
      const float top = std::max(run_max[n], mx);
      if (top == -INFINITY) continue;
      run_sum[n] = run_sum[n] * std::exp(double(run_max[n]) - top) + s * std::exp(double(mx) - top);
      run_max[n] = top;
    }
  }
  for (int n = 0; n < M; ++n) {
    lse[n] = run_max[n] + float(std::log(run_sum[n]));
    losses[n] += lse[n];
  }
}

void held_classifier_bwd(Backend& be, Model& m, const float* xf, const int32_t* targets, const float* lse, float scale,
                         float* dxf, int M) {
  const int V = m.cfg.vocab_size, D = m.cfg.dim;
  for (int v0 = 0; v0 < V; v0 += kChunkRows) {
    const int w = std::min(kChunkRows, V - v0);
    float* z_all = chunk_logits(be, m, xf, M, v0, w);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < M; ++n) {
      float* z = z_all + size_t(n) * w;
      for (int i = 0; i < w; ++i) z[i] = scale * std::exp(z[i] - lse[n]);
      if (targets[n] >= v0 && targets[n] < v0 + w) z[targets[n] - v0] -= scale;
    }
    be.linear_bwd_x(z_all, buffers().weights.data(), dxf, M, D, w, v0 > 0);
  }
}

}  // namespace anetrain
