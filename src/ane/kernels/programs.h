// The training kernels of the dynamic pipeline as MIL programs, built from a layer's shape.
// Weights travel in each program's single input next to the activations (the "dynamic matmul":
// y = Mᵀx with M staged in the input's spatial columns), so a program is compiled once per
// shape and never again when the weights change. Every program runs one sequence of T tokens.
//
// I/O is channel-first: an input [1, C, 1, W] holds activation a (N rows of C features) as
// a[t, c] at channel c, column t. Columns [0, T) are activations; staged matrices follow.
//
// Done right where the seed was not: query head h reads kv head h / (Hq/Hkv) in forward and
// backward alike; QK-norm; RoPE in either pair layout with θ from the config; the residual
// stream stays fp32 on the CPU (only branch outputs pass through fp16).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "ane/mil/builder.h"
#include "ane/mil/program.h"
#include "kernels/stages.h"

namespace anetrain::ane {

struct KernelProgram {
  std::string name;  // "attention_fwd", "linear_768x2048", ...
  mil::Program program;
  std::map<std::string, std::vector<uint8_t>> blobs;  // "weights/mask.bin" → file bytes
};

// Adds `values` as the fp16 blob "weights/NAME.bin" of program k and returns the BLOBFILE const.
mil::Var add_fp16_blob(mil::Builder& b, KernelProgram& k, const std::string& name, mil::Shape shape,
                       const std::vector<float>& values);

// One sequence of a layer: BlockDims with B = 1.
struct LayerShape {
  int T, D, Hq, Hkv, hd, F;
  float eps, theta;
  RopeStyle rope;
  bool qk_norm;
  int qd() const { return Hq * hd; }
  int kvd() const { return Hkv * hd; }
  static LayerShape from(const BlockDims& d);
};

// y[o, t] = Σ_c M[c, o]·x[c, t]. Input [1, ic, 1, T + oc]: x in columns [0, T), M in [T, T + oc).
KernelProgram linear_program(int ic, int oc, int T);
// y = M1ᵀx1 + M2ᵀx2. Input [1, ic, 1, 2T + 2oc]: x1, x2, M1, M2.
KernelProgram dual_linear_program(int ic, int oc, int T);

// Attention forward up to (not including) Wo.
// Input [1, D, 1, T + qd + 2kvd (+2 with QK-norm)]: xn; Wqᵀ [D,qd]; Wkᵀ [D,kvd]; Wvᵀ [D,kvd];
// with QK-norm two more columns holding q_norm and k_norm in channels [0, hd).
// Output [1, C, 1, T], channels: attn [qd], q after norm+RoPE [qd], k after norm+RoPE [kvd],
// v [kvd]; with QK-norm also q_raw [qd], k_raw [kvd], q_rstd [Hq], k_rstd [Hkv].
KernelProgram attention_fwd_program(const LayerShape& s);
int attention_fwd_input_width(const LayerShape& s);
int attention_fwd_output_channels(const LayerShape& s);

// Attention backward from dattn to the gradients before RoPE (QK-norm's backward stays on the
// CPU). Input [1, 2qd + 2kvd, 1, T]: q, k (after RoPE), v, dattn. Output [1, qd + 2kvd, 1, T]:
// dq, dk, dv, with dk and dv summed over the query heads that share each kv head.
KernelProgram attention_bwd_program(const LayerShape& s);

// SwiGLU FFN branch. Input [1, D, 1, T + 3F]: xn; W_gateᵀ [D,F]; W_upᵀ [D,F]; W_down [D,F]
// as stored. Output [1, D + 3F, 1, T]: f = W_down·h, g, u, h = silu(g)·u.
KernelProgram ffn_fwd_program(const LayerShape& s);

}  // namespace anetrain::ane

namespace anetrain::ane {

// Generation: weights do not change while decoding, so one token's products run as programs
// with the weights baked in as BLOBFILE constants (1×1 convs, the ANE's native projection),
// compiled once per layer per model load. Input [1, C_in, 1, 1], one token.
//   decode_qkv:  xn [D]            → q, k, v before QK-norm and RoPE [qd + 2kvd]
//   decode_wo:   attn [qd]         → o [D]
//   decode_ffn:  xn [D]            → f, g, u, h [D + 3F]
struct LayerWeights {  // fp32 views of one layer's matrices, as stored ([out, in])
  const float *wq, *wk, *wv, *wo, *w_gate, *w_up, *w_down;
};
KernelProgram decode_qkv_program(const LayerShape& s, const LayerWeights& w, int layer);
KernelProgram decode_wo_program(const LayerShape& s, const LayerWeights& w, int layer);
KernelProgram decode_ffn_program(const LayerShape& s, const LayerWeights& w, int layer);

}  // namespace anetrain::ane
