#include "backends/ane/staging.h"

namespace anetrain::ane {

namespace {
int64_t width(const mil::Tensor& t) { return t.type.shape[3]; }

// in[ch0 + c, col + t] = rows[t·C + c]: T rows of C features into a block of channels × columns.
void put_rows_at(mil::Tensor& in, int ch0, int col, const float* rows, int T, int C) {
  float* p = in.ptr();
  const int64_t W = width(in);
  for (int c = 0; c < C; ++c)
    for (int t = 0; t < T; ++t) p[(ch0 + c) * W + col + t] = rows[size_t(t) * C + c];
}
}  // namespace

void put_rows(mil::Tensor& in, int col, const float* rows, int T, int C) { put_rows_at(in, 0, col, rows, T, C); }

// Wᵀ's column o is W's row o: the OC rows of W go in as rows.
void put_transposed(mil::Tensor& in, int col, const float* Wt, int OC, int C) { put_rows_at(in, 0, col, Wt, OC, C); }

void put_as_stored(mil::Tensor& in, int col, const float* Ws, int C, int OC) {
  float* p = in.ptr();
  const int64_t W = width(in);
  for (int c = 0; c < C; ++c)
    for (int o = 0; o < OC; ++o) p[c * W + col + o] = Ws[size_t(c) * OC + o];
}

void put_column(mil::Tensor& in, int col, const float* v, int n) {
  float* p = in.ptr();
  const int64_t W = width(in);
  for (int c = 0; c < n; ++c) p[c * W + col] = v[c];
}

void put_channels(mil::Tensor& in, int ch0, const float* rows, int T, int C) { put_rows_at(in, ch0, 0, rows, T, C); }

void get_channels(const mil::Tensor& out, int ch0, float* rows, int T, int C) {
  const float* p = out.ptr();
  const int64_t W = width(out);
  for (int c = 0; c < C; ++c)
    for (int t = 0; t < T; ++t) rows[size_t(t) * C + c] = p[(ch0 + c) * W + t];
}

void put_heads(mil::Tensor& in, int ch0, const float* rows, int T, const HeadLayout& h) {
  float* p = in.ptr();
  const int64_t W = width(in);
  const int src_width = h.src_heads * h.hd;
  for (int head = 0; head < h.heads(); ++head) {
    const int src = head / h.repeat;  // query head `head` reads kv head head / (Hq/Hkv)
    for (int e = 0; e < h.hd; ++e) {
      float* row = p + (ch0 + int64_t(head) * h.hd_pad + e) * W;
      for (int t = 0; t < T; ++t) row[t] = rows[size_t(t) * src_width + size_t(src) * h.hd + e];
    }
  }
}

void get_heads(const mil::Tensor& out, int ch0, float* rows, int T, const HeadLayout& h) {
  const float* p = out.ptr();
  const int64_t W = width(out);
  const int dst_width = h.src_heads * h.hd;
  for (int src = 0; src < h.src_heads; ++src)
    for (int e = 0; e < h.hd; ++e)
      for (int t = 0; t < T; ++t) {
        // fp32 sum over the query heads that share this kv head: the transpose of put_heads.
        float sum = 0.0f;
        for (int r = 0; r < h.repeat; ++r) sum += p[(ch0 + int64_t(src * h.repeat + r) * h.hd_pad + e) * W + t];
        rows[size_t(t) * dst_width + size_t(src) * h.hd + e] = sum;
      }
}

void get_first_heads(const mil::Tensor& out, int ch0, float* rows, int T, const HeadLayout& h) {
  const float* p = out.ptr();
  const int64_t W = width(out);
  const int dst_width = h.src_heads * h.hd;
  for (int src = 0; src < h.src_heads; ++src)
    for (int e = 0; e < h.hd; ++e)
      for (int t = 0; t < T; ++t)
        rows[size_t(t) * dst_width + size_t(src) * h.hd + e] = p[(ch0 + int64_t(src * h.repeat) * h.hd_pad + e) * W + t];
}

}  // namespace anetrain::ane
