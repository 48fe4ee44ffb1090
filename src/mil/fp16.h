// fp16 storage semantics on the host: values live in fp32 buffers that only ever hold numbers an
// fp16 can represent. After every op the result is rounded to nearest-even; overflow becomes ±inf
// and NaN stays NaN. Uses the F16C conversions where the CPU has them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace anetrain::sim {

void round_to_fp16(float* x, size_t n);
void fp16_to_fp32(const uint16_t* in, float* out, size_t n);
void fp32_to_fp16(const float* in, uint16_t* out, size_t n);
float round_to_fp16(float x);

}  // namespace anetrain::sim
