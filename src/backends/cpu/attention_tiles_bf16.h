// bf16 tile products for cpu-bf16's flash attention (flash_attention_bf16.cpp) on AMX-BF16.
// AMX multiplies pairs of bf16 values and adds both products to one fp32 element, so every
// operand is laid out in "pairs": 32-bit words holding two bf16 values adjacent along the sum's
// index k (low half k even, high half k odd; a missing odd partner is zero).
//
//   C(M,N) = alpha·A·B (+ C when accumulating), fp32 C, with
//   A(m, p) = the pair A[m·lda + p]: rows readable up to M rounded up to 16, words [Kp, round16(Kp)) zero;
//   B(p, n) = the pair B[p·ldb + n]: rows [Kp, round16(Kp)) zero, each row readable up to round16(N).
//
// Packers from fp32 (rounding to nearest even, as the rest of cpu-bf16 rounds); each writes the
// zero padding the product needs, up to round16 of its pair count and (the last two) of its
// other extent, so `out` must have room for it:
//   pack_rows             out[r·ldo + p] = (x[r][2p], x[r][2p+1])   A, sum index along x's rows
//   pack_row_pairs        out[p·ldo + c] = (x[2p][c], x[2p+1][c])   B, sum index down x's columns
//   pack_row_pairs_transposed  out[c·ldo + p] = the same pair       A = xᵀ, sum index down x's columns
//   pack_cols             out[p·ldo + r] = (x[r][2p], x[r][2p+1])   B = xᵀ, sum index along x's rows
#pragma once
#include <cstddef>
#include <cstdint>

namespace anetrain::bf16_tiles {

// Whether this CPU has AMX-BF16, Linux granted this process the tile state and x86_level()
// (ANETRAIN_CPU_LEVEL, limit_x86_level) allows amx; nothing below may be called otherwise.
bool available();

constexpr int pairs(int n) { return (n + 1) / 2; }
constexpr int round16(int n) { return (n + 15) / 16 * 16; }

// Loads this thread's tile configuration (once per task, before its products) and gives the tile
// state back at the end of the task.
class ThreadTiles {
 public:
  ThreadTiles();
  ~ThreadTiles();
  ThreadTiles(const ThreadTiles&) = delete;
  ThreadTiles& operator=(const ThreadTiles&) = delete;
};

void pack_rows(const float* x, size_t ldx, int rows, int cols, uint32_t* out, size_t ldo);
void pack_row_pairs(const float* x, size_t ldx, int rows, int cols, uint32_t* out, size_t ldo);
void pack_row_pairs_transposed(const float* x, size_t ldx, int rows, int cols, uint32_t* out, size_t ldo);
void pack_cols(const float* x, size_t ldx, int rows, int cols, uint32_t* out, size_t ldo);

// Inside a ThreadTiles' lifetime on the calling thread.
void gemm(int M, int N, int Kp, const uint32_t* A, size_t lda, const uint32_t* B, size_t ldb, float* C, size_t ldc,
          float alpha, bool accumulate);

}  // namespace anetrain::bf16_tiles
