// Products and reductions of the simulator: fp32 accumulation (OpenBLAS sgemm on fp16-valued
// operands, which are exact in fp32), one rounding of the result to fp16.
#include "core/blas.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mil/sim/ops.h"

namespace anetrain::sim {

using mil::Shape;
using mil::Type;

namespace {

std::vector<int64_t> batch_strides(const Shape& s, const Shape& out_batch) {
  // Element offsets of each batch index of a [.., r, c] tensor, broadcast to out_batch.
  size_t nb = s.size() - 2;
  int64_t mat = s[s.size() - 1] * s[s.size() - 2];
  std::vector<int64_t> own(nb, mat);
  for (int i = int(nb) - 2; i >= 0; --i) own[i] = own[i + 1] * s[i + 1];
  std::vector<int64_t> st(out_batch.size(), 0);
  size_t off = out_batch.size() - nb;
  for (size_t i = 0; i < nb; ++i) st[off + i] = s[i] == 1 ? 0 : own[i];
  return st;
}

}  // namespace

Tensor matmul(const Tensor& x, const Tensor& y, bool tx, bool ty, const Type& out) {
  Tensor r = Tensor::zeros(out);
  const Shape& xs = x.type.shape;
  const Shape& ys = y.type.shape;
  int rank = out.rank();
  int64_t m = out.shape[rank - 2], n = out.shape[rank - 1];
  int64_t k = tx ? xs[xs.size() - 2] : xs[xs.size() - 1];
  Shape batch(out.shape.begin(), out.shape.end() - 2);
  std::vector<int64_t> sx = batch_strides(xs, batch), sy = batch_strides(ys, batch);
  int64_t batches = mil::shape_numel(batch);
  std::vector<int64_t> idx(batch.size(), 0);
  for (int64_t b = 0; b < batches; ++b) {
    int64_t ox = 0, oy = 0, rem = b;
    for (int d = int(batch.size()) - 1; d >= 0; --d) {
      int64_t i = rem % batch[d];
      rem /= batch[d];
      ox += i * sx[d], oy += i * sy[d];
    }
    cblas_sgemm(CblasRowMajor, tx ? CblasTrans : CblasNoTrans, ty ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
                1.0f, x.ptr() + ox, int(xs.back()), y.ptr() + oy, int(ys.back()), 0.0f, r.ptr() + b * m * n, int(n));
  }
  round_result(r);
  return r;
}

Tensor conv(const Tensor& x, const Tensor& w, const Tensor* bias, const ConvParams& p, const Type& out) {
  Tensor r = Tensor::zeros(out);
  const Shape& xs = x.type.shape;
  const Shape& ws = w.type.shape;
  int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
  int64_t OC = ws[0], KH = ws[2], KW = ws[3], OH = out.shape[2], OW = out.shape[3];
  int64_t g = p.groups, icg = C / g, ocg = OC / g;
  bool pointwise = KH == 1 && KW == 1 && p.stride[0] == 1 && p.stride[1] == 1 && OH == H && OW == W;
  for (int64_t nb = 0; nb < N; ++nb) {
    for (int64_t gi = 0; gi < g; ++gi) {
      const float* xin = x.ptr() + (nb * C + gi * icg) * H * W;
      float* yout = r.ptr() + (nb * OC + gi * ocg) * OH * OW;
      const float* wg = w.ptr() + gi * ocg * icg * KH * KW;
      if (pointwise) {  // the ANE's projection: y[o, s] = Σ_c W[o, c]·x[c, s]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(ocg), int(H * W), int(icg), 1.0f, wg, int(icg), xin,
                    int(H * W), 0.0f, yout, int(H * W));
        continue;
      }
#pragma omp parallel for schedule(static)
      for (int64_t o = 0; o < ocg; ++o)
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            float acc = 0.0f;
            for (int64_t c = 0; c < icg; ++c)
              for (int64_t kh = 0; kh < KH; ++kh) {
                int64_t ih = oh * p.stride[0] + kh * p.dilation[0] - p.pad[0];
                if (ih < 0 || ih >= H) continue;
                for (int64_t kw = 0; kw < KW; ++kw) {
                  int64_t iw = ow * p.stride[1] + kw * p.dilation[1] - p.pad[2];
                  if (iw < 0 || iw >= W) continue;
                  acc += wg[((o * icg + c) * KH + kh) * KW + kw] * xin[(c * H + ih) * W + iw];
                }
              }
            yout[(o * OH + oh) * OW + ow] = acc;
          }
    }
  }
  if (bias)
    for (int64_t nb = 0; nb < N; ++nb)
      for (int64_t o = 0; o < OC; ++o)
        for (int64_t s = 0; s < OH * OW; ++s) r.ptr()[(nb * OC + o) * OH * OW + s] += bias->ptr()[o];
  round_result(r);
  return r;
}

Tensor reduce_sum(const Tensor& x, const std::vector<bool>& reduced, const Type& out) {
  const Shape& s = x.type.shape;
  // Output strides of each input axis: 0 on reduced axes, so every input element finds its sum.
  std::vector<int64_t> ost(s.size(), 0);
  int64_t stride = 1;
  for (int i = int(s.size()) - 1; i >= 0; --i)
    if (!reduced[i]) ost[i] = stride, stride *= s[i];
  std::vector<float> acc(size_t(out.numel()), 0.0f);
  std::vector<int64_t> idx(s.size(), 0);
  int64_t o = 0;
  const float* px = x.ptr();
  for (size_t i = 0; i < x.numel(); ++i) {
    acc[size_t(o)] += px[i];
    for (int d = int(s.size()) - 1; d >= 0; --d) {
      if (++idx[d] < s[d]) {
        o += ost[d];
        break;
      }
      o -= ost[d] * (s[d] - 1);
      idx[d] = 0;
    }
  }
  Tensor r{out, std::make_shared<std::vector<float>>(std::move(acc))};
  round_result(r);
  return r;
}

// exp(x − max) / Σ exp(x − max) in fp32. −inf entries (a −65504 mask plus a negative score
// overflows to −inf in fp16) give exactly 0; a row that is all −inf, or holds a NaN or +inf,
// gives NaN, as IEEE arithmetic does — the trainer's loss scaling relies on seeing that.
Tensor softmax(const Tensor& x, int axis) {
  Tensor r = Tensor::zeros(x.type);
  const Shape& s = x.type.shape;
  int64_t n = s[axis], inner = 1, outer = 1;
  for (int i = axis + 1; i < int(s.size()); ++i) inner *= s[i];
  for (int i = 0; i < axis; ++i) outer *= s[i];
  const float* px = x.ptr();
  float* pr = r.ptr();
#pragma omp parallel for collapse(2) if (outer * inner > 64) schedule(static)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      const float* row = px + o * n * inner + in;
      float* dst = pr + o * n * inner + in;
      float mx = -std::numeric_limits<float>::infinity();
      bool nan = false;
      for (int64_t j = 0; j < n; ++j) {
        float v = row[j * inner];
        nan |= std::isnan(v);
        mx = std::max(mx, v);
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < n; ++j) sum += (dst[j * inner] = std::exp(row[j * inner] - mx));
      float inv = 1.0f / sum;
      for (int64_t j = 0; j < n; ++j) dst[j * inner] = nan ? std::numeric_limits<float>::quiet_NaN() : dst[j * inner] * inv;
    }
  round_result(r);
  return r;
}

// scaled_dot_product_attention as the hardware runs it: softmax(q·kᵀ/√E)·v. The mask argument
// is ignored — the compiled program does not apply it (the executor warns at compile time).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const Type& out) {
  int r = q.type.rank();
  Shape score_shape = q.type.shape;
  score_shape[r - 1] = k.type.shape[r - 2];
  Type st = Type::of(q.type.elem, score_shape);
  Tensor scores = matmul(q, k, false, true, st);
  float scale = 1.0f / std::sqrt(float(q.type.shape[r - 1]));
  Tensor scale_t{Type::scalar(q.type.elem), std::make_shared<std::vector<float>>(1, scale)};
  round_result(scale_t);
  Tensor scaled = binary(Binary::mul, scores, scale_t, st);
  return matmul(softmax(scaled, r - 1), v, false, false, out);
}

}  // namespace anetrain::sim
