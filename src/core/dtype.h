// Scalar storage types of tensors on disk (F32/F16/BF16) and their conversions to fp32.
// Compute is fp32 everywhere in the CPU/ref backends; halves appear only in files and on the ANE.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace anetrain {

enum class DType { f32, f16, bf16 };

// What the matrix products of a training or inference run compute in. bf16 is mixed precision:
// bf16 inputs, fp32 accumulation, fp32 master weights, optimizer state, loss and softmax.
enum class Precision { fp32, bf16 };
std::string precision_name(Precision p);
Precision parse_precision(const std::string& name);  // "fp32" | "bf16"; throws Error otherwise

std::string dtype_name(DType t);          // safetensors tag: "F32", "F16", "BF16"
size_t dtype_size(DType t);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as PyTorch does; NaN stays NaN (quiet bit forced).
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t((bits + rounding) >> 16);
}

// f32_to_bf16 written branch-free, so a loop around it vectorises; the same results, NaN included.
// (Checked in the assembly: on aarch64 GCC 12 and clang 14 at -O3 turn such loops into NEON —
// ADD, CMHI, BSL, XTN here, SHLL/SHLL2 for bf16_to_f32 — so no hand-written kernel is needed;
// and BFCVTN would depend on the FPCR's rounding and flush modes, these integer steps do not.)
inline uint16_t f32_to_bf16_branchless(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
  return uint16_t(nan ? ((bits >> 16) | 0x40u) : rounded);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even; overflow → ±inf

}  // namespace anetrain
