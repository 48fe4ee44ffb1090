// Every activation and scratch buffer a training step needs for a given (config, B, T),
// carved out of one allocation made up front. forward/backward never allocate.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/stages.h"

namespace anetrain {

struct Workspace {
  Workspace(const ModelConfig& cfg, int B, int T);
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  int B, T;
  BlockDims dims;
  std::vector<int32_t> inputs, targets;  // (N) each
  std::vector<float*> x;                 // L+1 residual-stream snapshots, x[0] = embeddings, each (N,D)
  std::vector<float*> x_mid;             // L, after each attention block, (N,D)
  std::vector<AttentionSaved> attn;      // L
  std::vector<FfnSaved> ffn;             // L
  AttentionScratch attn_scratch;
  FfnScratch ffn_scratch;
  float* xf;          // (N,D) final-normed stream
  float* final_rstd;  // (N)
  float* logits;      // (N,V)
  float* dlogits;     // (N,V)
  float* losses;      // (N)
  float* dxf;         // (N,D)
  float* dx_a;        // (N,D) two ping-pong buffers for the residual gradient
  float* dx_b;        // (N,D)
  size_t floats() const { return arena_.size(); }

 private:
  std::vector<float> arena_;
};

}  // namespace anetrain
