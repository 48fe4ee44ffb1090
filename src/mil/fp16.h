// fp16 values on the host: an fp16 tensor (mil/tensor.h) keeps fp32 values that an fp16 can
// represent, and these conversions make them so — to nearest-even, overflow to ±inf, NaN kept —
// or move them to and from the 16-bit form a Neural Engine surface holds. Uses the F16C
// conversions where the CPU has them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace anetrain::mil {

void round_to_fp16(float* x, size_t n);
void fp16_to_fp32(const uint16_t* in, float* out, size_t n);
void fp32_to_fp16(const float* in, uint16_t* out, size_t n);
float round_to_fp16(float x);

}  // namespace anetrain::mil
