// Decode attention for one query head over the KV cache, shared by the cpu backend's fused
// decode layer and its tests: p = softmax(K·q · scale), out = Vᵀ·p. The kernel is chosen per
// call by the CPU's features (AVX-512 on x86-64, NEON on aarch64) for head widths 16, 32, 64
// and 128; other widths, and other CPUs, take the portable loops.
#pragma once

namespace anetrain {

// q: hd values; k, v: n cached rows each, ldkv floats apart; p: n scores (the probabilities on
// return); out: hd values.
void attend_head(const float* q, const float* k, const float* v, int ldkv, int n, int hd, float scale, float* p,
                 float* out);

// The kernel attend_head runs for head width hd on this CPU now: "avx512", "neon" or "portable".
const char* attend_head_kernel(int hd);

}  // namespace anetrain
