// ref rotary embedding. Pair p of a head (0 ≤ p < hd/2) rotates by angle pos·θ^(−2p/hd);
// the style only decides which two elements form pair p (see RopeStyle).
#include <cmath>

#include "backends/ref/ref_backend.h"

namespace anetrain {

namespace {

void rotate(float* x, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta, double sign) {
  if (style == RopeStyle::none) return;  // the identity, and its own backward
  const int half = hd / 2;
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < H; ++h) {
        float* v = x + ((size_t(b) * T + t) * H + h) * hd;
        for (int p = 0; p < half; ++p) {
          double angle = double(pos0 + t) * std::pow(double(theta), -2.0 * p / hd);
          double c = std::cos(angle), s = sign * std::sin(angle);
          int i0 = style == RopeStyle::interleaved ? 2 * p : p;
          int i1 = style == RopeStyle::interleaved ? 2 * p + 1 : p + half;
          double a = v[i0], bb = v[i1];
          v[i0] = float(a * c - bb * s);
          v[i1] = float(a * s + bb * c);
        }
      }
}

}  // namespace

void RefBackend::rope_fwd(float* x, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) {
  rotate(x, B, T, H, hd, pos0, style, theta, +1.0);
}

void RefBackend::rope_bwd(float* dx, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) {
  rotate(dx, B, T, H, hd, pos0, style, theta, -1.0);
}

}  // namespace anetrain
