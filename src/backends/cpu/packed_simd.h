// The x86 intrinsics for the hand-written AVX-512/AMX kernels (packed_linear.cpp,
// packed_gemm_*.cpp, attention_tiles_bf16.cpp), included before anything else in those files.
// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*(), which its flow
// analysis then reports as uninitialised (GCC bug 105593) although every lane is written; the two
// warnings are off for the rest of the file.
#pragma once
#if defined(__x86_64__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif
