// The packed products' activation rows (PackedActivation) and the names of the kernels RowDot
// chose; the kernels themselves and their choice are in packed_linear.cpp and kernels_arm.h.
#include <algorithm>

#include "backends/cpu/packed_dot.h"
#if defined(__aarch64__)
#include "backends/cpu/kernels_arm.h"
#endif

namespace anetrain {

void PackedActivation::prepare(const float* rows, int n_rows, int row_width, WeightFormat fmt, int q8_group) {
  x = rows;
  cols = row_width;
  group = q8_group;
  if (fmt != WeightFormat::q8_0) return;
  const size_t n = size_t(n_rows) * size_t(row_width);
  if (q.size() < n) q.resize(n), u.resize(n);
  if (scales.size() < n / size_t(group)) scales.resize(n / size_t(group));
#if defined(__aarch64__)
  // No offset copy here: only the x86 VNNI kernels read it.
  if (group % 16 == 0) return arm::quantize_q8_0_neon(rows, n, group, q.data(), scales.data());
  quantize_q8_0(rows, n, group, q.data(), scales.data());
#else
  quantize_q8_0(rows, n, group, q.data(), scales.data());
  for (size_t i = 0; i < n; ++i) u[i] = uint8_t(int(q[i]) + 128);
#endif
}

const char* q8_quantizer_kernel(int group) {
#if defined(__aarch64__)
  if (group > 0 && group % 16 == 0) return "neon";
#endif
  (void)group;
  return "reference";
}

void PackedActivation::reserve(size_t values, int min_group) {
  if (q.size() < values) q.resize(values), u.resize(values);
  const size_t groups = values / size_t(std::max(min_group, 1));
  if (scales.size() < groups) scales.resize(groups);
}

const char* RowDot::kernel() const {
  switch (fmt_) {
#if defined(__aarch64__)
    case WeightFormat::f32: return "f32_neon";
    case WeightFormat::bf16: return "bf16_neon";
#else
    case WeightFormat::f32: return avx512_ ? "f32_avx512" : "f32_portable";
    case WeightFormat::bf16: return avx512_ ? "bf16_avx512" : "bf16_portable";
#endif
    case WeightFormat::q8_0: break;
  }
  switch (q8_) {
    case Q8Kernel::vnni_g32: return "q8_vnni_g32";
    case Q8Kernel::vnni_only64: return "q8_vnni_only64";
    case Q8Kernel::vnni_g64: return "q8_vnni_g64";
    case Q8Kernel::neon: return "q8_neon";
    case Q8Kernel::dotprod: return "q8_dotprod";
    case Q8Kernel::scalar: break;
  }
  return "q8_portable";
}

}  // namespace anetrain
