// Data movement and elementwise ops of the simulator.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "mil/fp16.h"
#include "mil/sim/ops.h"

namespace anetrain::sim {

using mil::ElemType;
using mil::Shape;
using mil::Type;

// The Neural Engine's datapath is fp16: a tensor declared fp32 inside a program is still computed
// and stored in fp16; fp32 exists only at the I/O boundary, where the conversion is exact widening.
void round_result(Tensor& t) {
  if (mil::is_float(t.type.elem)) mil::round_to_fp16(t.ptr(), t.numel());
}

namespace {

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int i = int(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

// Strides of `in` seen through a broadcast to `out` (right-aligned, 0 where `in` has size 1).
std::vector<int64_t> broadcast_strides(const Type& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  if (!in.tensor) return st;
  std::vector<int64_t> own = strides_of(in.shape);
  size_t off = out.size() - in.shape.size();
  for (size_t i = 0; i < in.shape.size(); ++i) st[off + i] = in.shape[i] == 1 ? 0 : own[i];
  return st;
}

// Calls f(out_index, a_offset, b_offset, n, a_step, b_step) for each innermost row of `shape`.
template <typename F>
void for_each_row(const Shape& shape, const std::vector<int64_t>& sa, const std::vector<int64_t>& sb, F&& f) {
  size_t r = shape.size();
  if (r == 0) return f(0, 0, 0, 1, 0, 0);
  int64_t inner = shape[r - 1], rows = mil::shape_numel(shape) / std::max<int64_t>(inner, 1);
  std::vector<int64_t> idx(r, 0);
  int64_t a = 0, b = 0;
  for (int64_t row = 0; row < rows; ++row) {
    f(row * inner, a, b, inner, sa[r - 1], sb[r - 1]);
    for (int d = int(r) - 2; d >= 0; --d) {
      if (++idx[d] < shape[d]) {
        a += sa[d], b += sb[d];
        break;
      }
      a -= sa[d] * (shape[d] - 1), b -= sb[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

template <typename Op>
void apply_binary(const Tensor& x, const Tensor& y, Tensor& out, Op op) {
  const float* px = x.ptr();
  const float* py = y.ptr();
  float* po = out.ptr();
  size_t n = out.numel();
  if (x.numel() == n && y.numel() == n && x.type.shape == y.type.shape) {
#pragma omp parallel for if (n > (1 << 16)) schedule(static)
    for (size_t i = 0; i < n; ++i) po[i] = op(px[i], py[i]);
    return;
  }
  if (x.numel() == n && y.numel() == 1) {
    float s = py[0];
#pragma omp parallel for if (n > (1 << 16)) schedule(static)
    for (size_t i = 0; i < n; ++i) po[i] = op(px[i], s);
    return;
  }
  Shape shape = out.type.tensor ? out.type.shape : Shape{1};
  for_each_row(shape, broadcast_strides(x.type, shape), broadcast_strides(y.type, shape),
               [&](int64_t o, int64_t a, int64_t b, int64_t len, int64_t sa, int64_t sb) {
                 for (int64_t i = 0; i < len; ++i) po[o + i] = op(px[a + i * sa], py[b + i * sb]);
               });
}

}  // namespace

Tensor reshape(const Tensor& x, const Type& out) { return {out, x.data}; }

Tensor transpose(const Tensor& x, const std::vector<int64_t>& perm, const Type& out) {
  Tensor y = Tensor::zeros(out);
  std::vector<int64_t> in_strides = strides_of(x.type.shape), src(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) src[i] = in_strides[perm[i]];
  const float* px = x.ptr();
  float* py = y.ptr();
  std::vector<int64_t> zero(perm.size(), 0);
  for_each_row(out.shape, src, zero, [&](int64_t o, int64_t a, int64_t, int64_t len, int64_t sa, int64_t) {
    for (int64_t i = 0; i < len; ++i) py[o + i] = px[a + i * sa];
  });
  return y;
}

Tensor slice(const Tensor& x, const std::vector<int64_t>& begin, const Type& out) {
  Tensor y = Tensor::zeros(out);
  std::vector<int64_t> st = strides_of(x.type.shape);
  int64_t base = 0;
  for (size_t i = 0; i < begin.size(); ++i) base += begin[i] * st[i];
  const float* px = x.ptr() + base;
  float* py = y.ptr();
  std::vector<int64_t> zero(st.size(), 0);
  for_each_row(out.shape, st, zero, [&](int64_t o, int64_t a, int64_t, int64_t len, int64_t, int64_t) {
    std::memcpy(py + o, px + a, size_t(len) * sizeof(float));
  });
  return y;
}

Tensor concat(const std::vector<const Tensor*>& values, int axis, const Type& out) {
  Tensor y = Tensor::zeros(out);
  int64_t outer = 1;
  for (int i = 0; i < axis; ++i) outer *= out.shape[i];
  int64_t out_block = out.numel() / outer, at = 0;
  for (const Tensor* v : values) {
    int64_t block = int64_t(v->numel()) / outer;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(y.ptr() + o * out_block + at, v->ptr() + o * block, size_t(block) * sizeof(float));
    at += block;
  }
  return y;
}

Tensor binary(Binary op, const Tensor& x, const Tensor& y, const Type& out) {
  Tensor r = Tensor::zeros(out);
  switch (op) {
    case Binary::add: apply_binary(x, y, r, [](float a, float b) { return a + b; }); break;
    case Binary::sub: apply_binary(x, y, r, [](float a, float b) { return a - b; }); break;
    case Binary::mul: apply_binary(x, y, r, [](float a, float b) { return a * b; }); break;
    case Binary::pow: apply_binary(x, y, r, [](float a, float b) { return std::pow(a, b); }); break;
  }
  // One fp32 operation on two fp16 operands, rounded once to fp16, is the correctly rounded fp16
  // result for + − ×: fp32's 24 bits are at least 2·11 + 2, so the double rounding is innocuous.
  round_result(r);
  return r;
}

Tensor sigmoid(const Tensor& x) {
  Tensor r = Tensor::zeros(x.type);
  const float* px = x.ptr();
  float* pr = r.ptr();
  size_t n = r.numel();
#pragma omp parallel for if (n > (1 << 16)) schedule(static)
  for (size_t i = 0; i < n; ++i) pr[i] = 1.0f / (1.0f + std::exp(-px[i]));
  round_result(r);
  return r;
}

Tensor cast(const Tensor& x, const Type& out) {
  Tensor r{out, std::make_shared<std::vector<float>>(*x.data)};
  if (out.elem == ElemType::int32)
    for (float& v : *r.data) v = std::trunc(v);
  else
    round_result(r);
  return r;
}

namespace {

// Applies f(value, scale, zero_point) with per-tensor or per-`axis` parameters.
template <typename F>
Tensor affine(const Tensor& x, const std::vector<float>& scale, const std::vector<float>& zp, int axis, const Type& out, F f) {
  Tensor r = Tensor::zeros(out);
  int64_t inner = 1, channels = 1;
  if (scale.size() > 1 || zp.size() > 1) {
    channels = x.type.shape[axis];
    for (int i = axis + 1; i < x.type.rank(); ++i) inner *= x.type.shape[i];
  }
  for (size_t i = 0; i < r.numel(); ++i) {
    size_t c = size_t((int64_t(i) / inner) % channels);
    r.ptr()[i] = f(x.ptr()[i], scale[scale.size() > 1 ? c : 0], zp.empty() ? 0.0f : zp[zp.size() > 1 ? c : 0]);
  }
  return r;
}

}  // namespace

Tensor quantize(const Tensor& x, const std::vector<float>& scale, const std::vector<float>& zp, int axis, const Type& out) {
  return affine(x, scale, zp, axis, out, [](float v, float s, float z) {
    float q = std::nearbyint(v / s) + z;  // ties to even, as in coremltools' numpy reference
    return std::isnan(q) ? 0.0f : std::clamp(q, -128.0f, 127.0f);
  });
}

Tensor dequantize(const Tensor& q, const std::vector<float>& scale, const std::vector<float>& zp, int axis, const Type& out) {
  Tensor r = affine(q, scale, zp, axis, out, [](float v, float s, float z) { return (v - z) * s; });
  round_result(r);
  return r;
}

}  // namespace anetrain::sim
