#include "contract/packed.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace anetrain {

std::string weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::f32: return "f32";
    case WeightFormat::bf16: return "bf16";
    case WeightFormat::q8_0: return "q8_0";
  }
  return "?";
}

WeightFormat parse_weight_format(const std::string& s) {
  if (s == "f32" || s == "fp32") return WeightFormat::f32;
  if (s == "bf16") return WeightFormat::bf16;
  if (s == "q8_0" || s == "int8") return WeightFormat::q8_0;
  fail("unknown weight dtype '" + s + "' (choose f32, bf16 or q8_0)");
}

size_t MatrixRef::bytes() const {
  const size_t n = size_t(rows) * size_t(cols);
  switch (format) {
    case WeightFormat::f32: return 4 * n;
    case WeightFormat::bf16: return 2 * n;
    case WeightFormat::q8_0: return n + 4 * (n / size_t(group));
  }
  return 0;
}

namespace {
// round() — half away from zero — in a form the compiler vectorises (libm's roundf is a call per
// value, and decoding quantizes ~50k activations per token on one thread). v − trunc(v) is exact.
inline float round_half_away(float v) {
  const float t = std::trunc(v);
  const float f = v - t;
  return f >= 0.5f ? t + 1.0f : f <= -0.5f ? t - 1.0f : t;
}
}  // namespace

void quantize_q8_0(const float* x, size_t n, int group, int8_t* q, float* scales) {
  for (size_t g = 0; g < n / size_t(group); ++g) {
    const float* xg = x + g * size_t(group);
    int8_t* qg = q + g * size_t(group);
    float amax = 0;
    bool nan = false;  // max() would skip a NaN; it must reach the scale instead
#pragma omp simd reduction(max : amax) reduction(|| : nan)
    for (int i = 0; i < group; ++i) {
      amax = std::max(amax, std::fabs(xg[i]));
      nan = nan || xg[i] != xg[i];
    }
    const float scale = nan ? NAN : amax / 127.0f;
    scales[g] = scale;
    // x / scale, not x · (1/scale): the two differ in the last bit. A zero group has scale 0
    // and quantizes to 0 (runq.c would divide 0 by 0 there); so does a NaN one.
    if (!(scale > 0.0f)) {
      std::fill(qg, qg + group, int8_t(0));
      continue;
    }
    // Clamped: when amax is a denormal, amax / 127 rounds coarsely and x / scale can pass 127.
    // (An infinite amax makes scale infinite: the finite values quantize to 0, ∞/∞ is caught.)
#pragma omp simd
    for (int i = 0; i < group; ++i) {
      // Plain compares, not std::clamp: its reference arguments kept this loop scalar (10% of a
      // Q8_0 token's time when it was).
      float v = round_half_away(xg[i] / scale);
      v = v > 127.0f ? 127.0f : v;
      v = v < -127.0f ? -127.0f : v;
      qg[i] = int8_t(int32_t(v == v ? v : 0.0f));
    }
  }
}

void quantize_q8_0_f16_scales(const float* x, size_t n, int8_t* q, float* scales) {
  for (size_t g = 0; g < n / 32; ++g) {
    const float* xg = x + g * 32;
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xg[i]));
    const float d = f16_to_f32(f32_to_f16(amax / 127.0f));
    scales[g] = d;
    for (int i = 0; i < 32; ++i) {
      const float v = d > 0 ? std::round(xg[i] / d) : 0.0f;
      q[g * 32 + size_t(i)] = v == v ? int8_t(std::clamp(v, -127.0f, 127.0f)) : int8_t(0);
    }
  }
}

void dequantize_row(const MatrixRef& W, int r, float* out) {
  const size_t base = size_t(r) * size_t(W.cols);
  switch (W.format) {
    case WeightFormat::f32: {
      const float* w = static_cast<const float*>(W.data) + base;
      for (int i = 0; i < W.cols; ++i) out[i] = w[i];
      return;
    }
    case WeightFormat::bf16: {
      const uint16_t* w = static_cast<const uint16_t*>(W.data) + base;
      for (int i = 0; i < W.cols; ++i) out[i] = bf16_to_f32(w[i]);
      return;
    }
    case WeightFormat::q8_0: {
      const int8_t* w = static_cast<const int8_t*>(W.data) + base;
      const float* s = W.scales + base / size_t(W.group);
      for (int i = 0; i < W.cols; ++i) out[i] = float(w[i]) * s[i / W.group];
      return;
    }
  }
}

void packed_linear_ref(const float* x, int N, const MatrixRef* W, float* const* y, int parts) {
  if (parts < 1) fail("packed_linear: no matrix");
  const int cols = W[0].cols;
  std::vector<float> row(static_cast<size_t>(cols));
  std::vector<int8_t> xq;
  std::vector<float> xs;
  for (int p = 0; p < parts; ++p) {
    const MatrixRef& M = W[p];
    if (M.cols != cols) fail("packed_linear: parts differ in width");
    if (M.format == WeightFormat::q8_0 && (M.group <= 0 || cols % M.group != 0))
      fail("packed_linear: Q8_0 group does not divide the width");
    if (M.format == WeightFormat::q8_0) {
      xq.resize(size_t(N) * cols);
      xs.resize(size_t(N) * cols / M.group);
      quantize_q8_0(x, size_t(N) * cols, M.group, xq.data(), xs.data());
    }
    for (int r = 0; r < M.rows; ++r) {
      if (M.format != WeightFormat::q8_0) dequantize_row(M, r, row.data());
      for (int n = 0; n < N; ++n) {
        double acc = 0;
        if (M.format == WeightFormat::q8_0) {
          const int8_t* w = static_cast<const int8_t*>(M.data) + size_t(r) * cols;
          const int G = cols / M.group;
          for (int g = 0; g < G; ++g) {
            int64_t dot = 0;
            for (int i = g * M.group; i < (g + 1) * M.group; ++i) dot += int64_t(w[i]) * xq[size_t(n) * cols + i];
            acc += double(dot) * double(M.scales[size_t(r) * G + g]) * double(xs[size_t(n) * G + g]);
          }
        } else {
          const float* xn = x + size_t(n) * cols;
          for (int i = 0; i < cols; ++i) acc += double(row[i]) * double(xn[i]);
        }
        y[p][size_t(n) * M.rows + r] = float(acc);
      }
    }
  }
}

}  // namespace anetrain
