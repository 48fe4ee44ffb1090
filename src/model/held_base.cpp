#include "model/held_base.h"

#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace anetrain {

namespace {
constexpr int kQ8Block = 32;

void check_blocks(const ParamSpec& s) {
  if (s.shape.back() % kQ8Block != 0)
    fail("--base-dtype q8_0: tensor '" + s.name + "' has rows of " + std::to_string(s.shape.back()) +
         " values, not whole blocks of 32; use --base-dtype bf16");
}
}  // namespace

HeldBase::HeldBase(const ParamTable& table) : format_(table.base_format()) {
  for (const ParamSpec& s : table.specs())
    if (s.held && format_ == WeightFormat::q8_0) check_blocks(s);
  const size_t n = table.held_total();
  if (format_ == WeightFormat::bf16) bf16_.assign(n, 0);
  if (format_ == WeightFormat::q8_0) {
    q8_.assign(n, 0);
    scales_.assign(n / kQ8Block, 0.0f);
  }
}

void HeldBase::store(const ParamSpec& s, const float* values) { store_rows(s, 0, size_t(s.shape[0]), values); }

void HeldBase::store_rows(const ParamSpec& s, size_t r0, size_t rows, const float* values) {
  const size_t n = rows * size_t(s.shape.back()), at = s.held_offset + r0 * size_t(s.shape.back());
  fingerprint_ = 0;
  if (format_ == WeightFormat::bf16) {
    uint16_t* dst = bf16_.data() + at;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(values[i]);
    return;
  }
  const size_t blocks = n / kQ8Block;
#pragma omp parallel for schedule(static)
  for (size_t b = 0; b < blocks; ++b)
    quantize_q8_0_f16_scales(values + b * kQ8Block, kQ8Block, q8_.data() + at + b * kQ8Block,
                             scales_.data() + at / kQ8Block + b);
}

void HeldBase::read_rows(const ParamSpec& s, size_t r0, size_t n, float* out) const {
  const size_t cols = size_t(s.shape.back()), count = n * cols, at = s.held_offset + r0 * cols;
  if (format_ == WeightFormat::bf16) {
    const uint16_t* src = bf16_.data() + at;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < count; ++i) out[i] = bf16_to_f32(src[i]);
    return;
  }
  const int8_t* q = q8_.data() + at;
  const float* sc = scales_.data() + at / kQ8Block;
#pragma omp parallel for schedule(static)
  for (size_t b = 0; b < count / kQ8Block; ++b)
    for (size_t i = b * kQ8Block; i < (b + 1) * kQ8Block; ++i) out[i] = float(q[i]) * sc[b];
}

size_t HeldBase::bytes() const { return bf16_.size() * 2 + q8_.size() + scales_.size() * sizeof(float); }

uint64_t HeldBase::fingerprint() const {
  if (fingerprint_ != 0) return fingerprint_;
  uint64_t h = 1469598103934665603ull;
  // FNV-1a's step over 8-byte words (a byte at a time is ~1 s for a 1.2 GB base), the tail bytewise.
  auto mix = [&h](const void* p, size_t bytes) {
    const auto* b = static_cast<const unsigned char*>(p);
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
      uint64_t w;
      std::memcpy(&w, b + i, 8);
      h = (h ^ w) * 1099511628211ull;
    }
    for (; i < bytes; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  mix(bf16_.data(), bf16_.size() * 2);
  mix(q8_.data(), q8_.size());
  mix(scales_.data(), scales_.size() * sizeof(float));
  fingerprint_ = h == 0 ? 1 : h;
  return fingerprint_;
}

void round_like_held(WeightFormat f, float* v, size_t n) {
  if (f == WeightFormat::bf16) {
    for (size_t i = 0; i < n; ++i) v[i] = bf16_to_f32(f32_to_bf16(v[i]));
    return;
  }
  if (f != WeightFormat::q8_0) return;
  if (n % kQ8Block) fail("internal: Q8_0 rounding of " + std::to_string(n) + " values, not whole blocks");
  int8_t q[kQ8Block];
  float scale;
  for (size_t b = 0; b < n / kQ8Block; ++b) {
    quantize_q8_0_f16_scales(v + b * kQ8Block, kQ8Block, q, &scale);
    for (int i = 0; i < kQ8Block; ++i) v[b * kQ8Block + size_t(i)] = float(q[i]) * scale;
  }
}

WeightFormat parse_base_dtype(const std::string& name, const std::string& what) {
  if (name == "f32") return WeightFormat::f32;
  if (name == "bf16") return WeightFormat::bf16;
  if (name == "q8_0") return WeightFormat::q8_0;
  fail(what + ": '" + name + "' is not one of f32, bf16, q8_0");
}

}  // namespace anetrain
