#include "ane/kernels/staging.h"

namespace anetrain::ane {

namespace {
int64_t width(const sim::Tensor& t) { return t.type.shape[3]; }
}  // namespace

void put_rows(sim::Tensor& in, int col, const float* rows, int T, int C) {
  float* p = in.ptr();
  const int64_t W = width(in);
  for (int c = 0; c < C; ++c)
    for (int t = 0; t < T; ++t) p[c * W + col + t] = rows[size_t(t) * C + c];
}

void put_transposed(sim::Tensor& in, int col, const float* Wt, int OC, int C) {
  float* p = in.ptr();
  const int64_t W = width(in);
  for (int c = 0; c < C; ++c)
    for (int o = 0; o < OC; ++o) p[c * W + col + o] = Wt[size_t(o) * C + c];
}

void put_as_stored(sim::Tensor& in, int col, const float* Ws, int C, int OC) {
  float* p = in.ptr();
  const int64_t W = width(in);
  for (int c = 0; c < C; ++c)
    for (int o = 0; o < OC; ++o) p[c * W + col + o] = Ws[size_t(c) * OC + o];
}

void put_column(sim::Tensor& in, int col, const float* v, int n) {
  float* p = in.ptr();
  const int64_t W = width(in);
  for (int c = 0; c < n; ++c) p[c * W + col] = v[c];
}

void put_channels(sim::Tensor& in, int ch0, const float* rows, int T, int C) {
  float* p = in.ptr();
  for (int c = 0; c < C; ++c)
    for (int t = 0; t < T; ++t) p[size_t(ch0 + c) * T + t] = rows[size_t(t) * C + c];
}

void get_channels(const sim::Tensor& out, int ch0, float* rows, int T, int C) {
  const float* p = out.ptr();
  for (int c = 0; c < C; ++c)
    for (int t = 0; t < T; ++t) rows[size_t(t) * C + c] = p[size_t(ch0 + c) * T + t];
}

}  // namespace anetrain::ane
