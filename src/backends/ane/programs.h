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

#include "backends/ane/kernel_program.h"
#include "contract/stages.h"
#include "mil/builder.h"

namespace anetrain::ane {

// The program builders (programs.cpp, decode_programs.cpp) are written in MIL's terms.
using mil::Builder;
using mil::ElemType;
using mil::Type;
using mil::Var;

// Adds `values` as the fp16 blob "weights/NAME.bin" of program k and returns the BLOBFILE const.
mil::Var add_fp16_blob(mil::Builder& b, KernelProgram& k, const std::string& name, mil::Shape shape,
                       const std::vector<float>& values);

// One sequence of a layer: BlockDims with B = 1 (the model's real sizes).
struct LayerShape {
  int T, D, Hq, Hkv, hd, F;
  float eps, theta;
  RopeStyle rope;
  bool qk_norm;
  int qd() const { return Hq * hd; }
  int kvd() const { return Hkv * hd; }
  static LayerShape from(const BlockDims& d);
};

// Every program stays inside what the seed's programs ran on real Neural Engines (the proven
// set, `anetrain mil check --strict`): tensors with N = 1, rows of 64 bytes, softmax over a
// power-of-two length, matmul inner dimensions that are multiples of 32. So the programs see a
// layer through padded sizes; the backend writes zeros into the padding and never reads it back.
constexpr int kAneAlign = 32;  // fp16 elements in 64 bytes; also the inner-dimension multiple
int ane_round_up(int n);                      // to a multiple of kAneAlign
int ane_attention_length(int T);              // a power of two ≥ max(T, kAneAlign)

// The attention core of one layer as the programs see it: every query head has its own k and
// v (grouped-query layers are replicated on the CPU, and their gradients summed there in
// fp32), each head `hd` wide (the model's head width rounded up), `hd_model` used for the RoPE
// frequencies and the 1/√hd scale.
struct AttentionShape {
  int T, H, hd, hd_model;
  float theta;
  RopeStyle rope;
  static AttentionShape from(const LayerShape& s);  // T and hd padded, H = Hq
  int width() const { return H * hd; }
};

// y[o, t] = Σ_c M[c, o]·x[c, t]. Input [1, ic, 1, W], W = ane_round_up(T + oc): x in columns
// [0, T), M in [T, T + oc), zeros after. ic and T multiples of kAneAlign.
KernelProgram linear_program(int ic, int oc, int T);
// y = M1ᵀx1 + M2ᵀx2. Input [1, ic, 1, ane_round_up(2T + 2oc)]: x1, x2, M1, M2.
KernelProgram dual_linear_program(int ic, int oc, int T);
int linear_input_width(int oc, int T);
int dual_linear_input_width(int oc, int T);

// Causal attention with RoPE, from q, k, v (QK-norm, when the model has it, ran on the CPU
// before). Input [1, 3·H·hd, 1, T]: q, k, v, head h in channels [h·hd, (h+1)·hd) of its block.
// Output [1, 3·H·hd, 1, T]: attn, q after RoPE, k after RoPE.
KernelProgram attention_fwd_program(const AttentionShape& a);
// Its backward from dattn to the gradients before RoPE, per query head. Input [1, 4·H·hd, 1, T]:
// q, k (after RoPE), v, dattn. Output [1, 3·H·hd, 1, T]: dq, dk, dv.
KernelProgram attention_bwd_program(const AttentionShape& a);

// SwiGLU FFN branch (D, F, T multiples of kAneAlign). Input [1, D, 1, T + 3F]: xn; W_gateᵀ
// [D,F]; W_upᵀ [D,F]; W_down [D,F] as stored. Output [1, D + 3F, 1, T]: f = W_down·h, g, u, h.
// Only where T + 3F ≤ kAneMaxWidth; wider layers run the FFN as three products.
KernelProgram ffn_fwd_program(int D, int F, int T);
constexpr int kAneMaxWidth = 16384;  // H and W of any tensor (reports of failures past it)

}  // namespace anetrain::ane

namespace anetrain::ane {

// Generation: weights do not change while decoding, so one token's products run as programs
// with the weights baked in as BLOBFILE constants (1×1 convs, the ANE's native projection),
// compiled once per layer per model load. Input [1, C_in, 1, kAneAlign]: the token in column 0,
// zeros after (rows of 64 bytes; reports of unstable results below 32 columns).
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
