// cpu rotary embedding: cos/sin per (position, pair) from a table the backend keeps (computed
// once per head_dim and θ, grown with the longest position seen), shared by all heads.
#include <cmath>

#include "backends/cpu/cpu_backend.h"

namespace anetrain {

namespace {

void rotate(float* x, int B, int T, int H, int hd, int pos0, RopeStyle style, const float* cos_tab,
            const float* sin_tab, float sign) {
  const int half = hd / 2;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      const float* cs = cos_tab + size_t(pos0 + t) * half;
      const float* sn_row = sin_tab + size_t(pos0 + t) * half;
      float sn[512];  // hd/2 ≤ 512 is checked by the caller's config (head_dim ≤ 1024)
      for (int p = 0; p < half; ++p) sn[p] = sign * sn_row[p];
      for (int h = 0; h < H; ++h) {
        float* v = x + ((size_t(b) * T + t) * H + h) * hd;
        if (style == RopeStyle::interleaved) {
          for (int p = 0; p < half; ++p) {
            float a = v[2 * p], c = v[2 * p + 1];
            v[2 * p] = a * cs[p] - c * sn[p];
            v[2 * p + 1] = a * sn[p] + c * cs[p];
          }
        } else {
          for (int p = 0; p < half; ++p) {
            float a = v[p], c = v[p + half];
            v[p] = a * cs[p] - c * sn[p];
            v[p + half] = a * sn[p] + c * cs[p];
          }
        }
      }
    }
}

}  // namespace

void CpuBackend::RopeTable::cover(int positions, int head_dim, float rope_theta) {
  if (head_dim != hd || rope_theta != theta) {
    hd = head_dim;
    theta = rope_theta;
    rows = 0;
  }
  if (positions <= rows) return;
  const int half = hd / 2;
  cos.resize(size_t(positions) * half);
  sin.resize(size_t(positions) * half);
  // Angles in double, as ref computes them; the table only saves recomputing them per call.
  for (int t = rows; t < positions; ++t)
    for (int p = 0; p < half; ++p) {
      const double angle = double(t) * std::pow(double(theta), -2.0 * p / hd);
      cos[size_t(t) * half + p] = float(std::cos(angle));
      sin[size_t(t) * half + p] = float(std::sin(angle));
    }
  rows = positions;
}

void CpuBackend::rope_fwd(float* x, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) {
  if (style == RopeStyle::none) return;  // the identity
  rope_.cover(pos0 + T, hd, theta);
  rotate(x, B, T, H, hd, pos0, style, rope_.cos.data(), rope_.sin.data(), 1.0f);
}

void CpuBackend::rope_bwd(float* dx, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) {
  if (style == RopeStyle::none) return;
  rope_.cover(pos0 + T, hd, theta);
  rotate(dx, B, T, H, hd, pos0, style, rope_.cos.data(), rope_.sin.data(), -1.0f);
}

}  // namespace anetrain
