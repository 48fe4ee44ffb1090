// ref linear layer: the three products of y = x·Wᵀ, each output an ordered float64 sum.
// Each product keeps a row of float64 sums and adds one term to each per pass, so the loads run
// along memory: every output still sums the same terms in the same order (i, o or n ascending) as
// one dot product at a time would — the same bits — without a strided walk or a single add chain
// per output (those made the oracle ~6x slower at model widths, where tests spend their time in it).
#include <algorithm>
#include <vector>

#include "backends/ref/ref_backend.h"

namespace anetrain {

// y[n][o] = sum over i of x[n][i]·W[o][i]
void RefBackend::linear_fwd(const float* x, const float* W, float* y, int N, int in, int out) {
  std::vector<float> Wt(size_t(in) * out);  // Wᵀ, so each pass over o reads along memory
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) Wt[size_t(i) * out + o] = W[size_t(o) * in + i];
  std::vector<double> acc(out);
  for (int n = 0; n < N; ++n) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int i = 0; i < in; ++i) {
      const double xi = x[size_t(n) * in + i];
      const float* wt_row = Wt.data() + size_t(i) * out;
      for (int o = 0; o < out; ++o) acc[o] += xi * wt_row[o];
    }
    for (int o = 0; o < out; ++o) y[size_t(n) * out + o] = float(acc[o]);
  }
}

// dx[n][i] (+)= sum over o of dy[n][o]·W[o][i]
void RefBackend::linear_bwd_x(const float* dy, const float* W, float* dx, int N, int in, int out, bool accumulate) {
  std::vector<double> acc(in);
  for (int n = 0; n < N; ++n) {
    float* dx_row = dx + size_t(n) * in;
    for (int i = 0; i < in; ++i) acc[i] = accumulate ? dx_row[i] : 0.0;
    for (int o = 0; o < out; ++o) {
      const double d = dy[size_t(n) * out + o];
      const float* w_row = W + size_t(o) * in;
      for (int i = 0; i < in; ++i) acc[i] += d * w_row[i];
    }
    for (int i = 0; i < in; ++i) dx_row[i] = float(acc[i]);
  }
}

// dW[o][i] += sum over n of dy[n][o]·x[n][i]
void RefBackend::linear_bwd_w(const float* dy, const float* x, float* dW, int N, int in, int out) {
  std::vector<double> acc(in);
  for (int o = 0; o < out; ++o) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int n = 0; n < N; ++n) {
      const double d = dy[size_t(n) * out + o];
      const float* x_row = x + size_t(n) * in;
      for (int i = 0; i < in; ++i) acc[i] += d * x_row[i];
    }
    float* dw_row = dW + size_t(o) * in;
    for (int i = 0; i < in; ++i) dw_row[i] += float(acc[i]);
  }
}

}  // namespace anetrain
