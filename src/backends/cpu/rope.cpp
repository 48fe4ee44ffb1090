// cpu rotary embedding: angles computed once per (position, pair) and shared by all heads.
#include <cmath>

#include "backends/cpu/cpu_backend.h"

namespace anetrain {

namespace {

void rotate(float* x, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta, float sign) {
  const int half = hd / 2;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      float cs[512], sn[512];  // hd/2 ≤ 512 is checked by the caller's config (head_dim ≤ 1024)
      for (int p = 0; p < half; ++p) {
        double angle = double(pos0 + t) * std::pow(double(theta), -2.0 * p / hd);
        cs[p] = float(std::cos(angle));
        sn[p] = sign * float(std::sin(angle));
      }
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

void CpuBackend::rope_fwd(float* x, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) {
  rotate(x, B, T, H, hd, pos0, style, theta, 1.0f);
}

void CpuBackend::rope_bwd(float* dx, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) {
  rotate(dx, B, T, H, hd, pos0, style, theta, -1.0f);
}

}  // namespace anetrain
