#include "backends/ane/programs.h"

#include <cmath>

#include "mil/blob.h"
#include "mil/builder.h"

namespace anetrain::ane {


namespace {

// A kernel under construction: the builder plus the constant blobs it references.
struct Kernel {
  Builder b;
  KernelProgram k;

  Var blob(const std::string& name, mil::Shape shape, const std::vector<float>& values) {
    return add_fp16_blob(b, k, name, std::move(shape), values);
  }
  // Columns [col, col + width) of the input's first `channels` channels.
  Var columns(const Var& in, int channels, int col, int width, const std::string& name) {
    return b.slice(in, {0, 0, 0, col}, {1, channels, 1, width}, name);
  }
  // [1, C, 1, S] → [1, 1, S, C]: tokens as rows, for matmuls against staged [C, N] matrices.
  Var rows(const Var& x, const std::string& name) {
    const mil::Shape& s = x.shape();
    return b.swap_last_two(b.reshape(x, {1, 1, s[1], s[3]}), name);
  }
  // [1, 1, S, C] → [1, C, 1, S]: back to the channel-first I/O layout.
  Var channels(const Var& rows_var, const std::string& name) {
    const mil::Shape& s = rows_var.shape();
    return b.reshape(b.swap_last_two(rows_var), {1, s[3], 1, s[2]}, name);
  }
  // [1, n, T, hd] → [1, n·hd, 1, T]
  Var merge_heads(const Var& h, const std::string& name) {
    const mil::Shape& s = h.shape();
    return b.reshape(b.swap_last_two(h), {1, s[1] * s[3], 1, s[2]}, name);
  }
  KernelProgram finish(const std::string& name, const std::vector<Var>& outputs) {
    k.name = name;
    k.program = b.finish(outputs);
    return std::move(k);
  }
};

std::vector<float> causal_mask(int T) {
  std::vector<float> m(size_t(T) * T);
  for (int i = 0; i < T; ++i)
    for (int j = 0; j < T; ++j) m[size_t(i) * T + j] = j <= i ? 0.0f : -65504.0f;
  return m;
}

// The RoPE partner of column j inside a head and whether j takes it negated: interleaved pairs
// (2p, 2p+1) for llama2.c weights, half pairs (p, p + hd/2) for Hugging Face ones.
struct RopePair {
  int p, partner;
  bool negate;
};
RopePair rope_pair(const AttentionShape& a, int j) {
  const int half = a.hd_model / 2;
  if (a.rope == RopeStyle::interleaved) return {j / 2, j ^ 1, j % 2 == 0};
  return {j % half, j < half ? j + half : j - half, j < half};
}

// cos/sin of pair p's angle at every column of pair p, for positions 0..T-1; zero in the
// padding columns [hd_model, hd), whose values are zero anyway.
std::vector<float> rope_table(const AttentionShape& a, bool sine) {
  std::vector<float> t(size_t(a.T) * a.hd, 0.0f);
  for (int pos = 0; pos < a.T; ++pos)
    for (int j = 0; j < a.hd_model; ++j) {
      const double angle = double(pos) * std::pow(double(a.theta), -2.0 * rope_pair(a, j).p / a.hd_model);
      t[size_t(pos) * a.hd + j] = float(sine ? std::sin(angle) : std::cos(angle));
    }
  return t;
}

// R with (x·R)_j = ∓x_partner(j): the rotation's "other half" as one product with a constant
// signed permutation, one copy per head — width-axis slices and concats for RoPE are reported to
// be rejected by newer Neural Engines (ncdrone/rustane #9), a per-head matmul is a seed construct.
std::vector<float> rope_rotation(const AttentionShape& a) {
  std::vector<float> r(size_t(a.H) * a.hd * a.hd, 0.0f);
  for (int h = 0; h < a.H; ++h)
    for (int j = 0; j < a.hd_model; ++j) {
      const RopePair pr = rope_pair(a, j);
      r[(size_t(h) * a.hd + size_t(pr.partner)) * a.hd + j] = pr.negate ? -1.0f : 1.0f;
    }
  return r;
}

// Everything attention needs in both directions: RoPE tables and rotation, the mask.
struct Attention {
  Kernel& k;
  const AttentionShape& a;
  Var cos, sin, rotation, mask;

  // `inverse`: the backward's rotation by −θ, as a table of −sin (x·cos + (x·R)·(−sin)), so both
  // directions are the seed's add of two products rather than a sub the seed never ran.
  Attention(Kernel& kernel, const AttentionShape& shape, bool inverse) : k(kernel), a(shape) {
    mask = k.blob("mask", {1, 1, a.T, a.T}, causal_mask(a.T));
    if (a.rope == RopeStyle::none) return;  // no tables, no rotation: rope() is the identity
    cos = k.blob("rope_cos", {1, 1, a.T, a.hd}, rope_table(a, false));
    std::vector<float> sines = rope_table(a, true);
    if (inverse)
      for (float& v : sines) v = -v;
    sin = k.blob(inverse ? "rope_sin_neg" : "rope_sin", {1, 1, a.T, a.hd}, sines);
    rotation = k.blob("rope_rotation", {1, a.H, a.hd, a.hd}, rope_rotation(a));
  }
  // Channels [ch, ch + H·hd) of the input as heads [1, H, T, hd].
  Var heads(const Var& in, int ch, const std::string& name) {
    Builder& b = k.b;
    Var block = b.slice(in, {0, ch, 0, 0}, {1, a.width(), 1, a.T}, name + "_c");
    return b.swap_last_two(b.reshape(block, {1, a.H, a.hd, a.T}), name);
  }
  // x·cos + (x·R)·sin, with the table's sign giving the direction.
  Var rope(const Var& h, const std::string& name) {
    if (a.rope == RopeStyle::none) return h;
    Builder& b = k.b;
    Var turned = b.mul(b.matmul(h, rotation, false, false, name + "_rot"), sin, name + "_sin");
    return b.add(b.mul(h, cos, name + "_cos"), turned, name);
  }
  // softmax(q·kᵀ/√hd + mask) over keys.
  Var probs(const Var& q, const Var& kk) {
    Builder& b = k.b;
    Var scores = b.mul(b.matmul(q, kk, false, true, "scores"), 1.0 / std::sqrt(double(a.hd_model)), "scaled");
    return b.softmax(b.add(scores, mask, "masked"), -1, "probs");
  }
};

}  // namespace

int ane_round_up(int n) { return (n + kAneAlign - 1) / kAneAlign * kAneAlign; }

int ane_attention_length(int T) {
  int n = kAneAlign;
  while (n < T) n *= 2;
  return n;
}

Var add_fp16_blob(Builder& b, KernelProgram& k, const std::string& name, mil::Shape shape,
                  const std::vector<float>& values) {
  mil::BlobWriter w;
  w.add_fp16(values.data(), values.size());
  const std::string file = "weights/" + name + ".bin";
  k.blobs[file] = w.bytes();
  return b.blob(name, Type::fp16(std::move(shape)), "@model_path/" + file, 64);
}

LayerShape LayerShape::from(const BlockDims& d) {
  return {d.T, d.D, d.Hq, d.Hkv, d.hd, d.F, d.eps, d.theta, d.rope, d.qk_norm};
}

AttentionShape AttentionShape::from(const LayerShape& s) {
  return {ane_attention_length(s.T), s.Hq, ane_round_up(s.hd), s.hd, s.theta, s.rope};
}

int linear_input_width(int oc, int T) { return ane_round_up(T + oc); }
int dual_linear_input_width(int oc, int T) { return ane_round_up(2 * T + 2 * oc); }

KernelProgram linear_program(int ic, int oc, int T) {
  Kernel k;
  Var in = k.b.input("x", Type::fp16({1, ic, 1, linear_input_width(oc, T)}));
  Var x = k.rows(k.columns(in, ic, 0, T, "act"), "x_rows");
  Var m = k.b.reshape(k.columns(in, ic, T, oc, "staged"), {1, 1, ic, oc}, "m");
  Var y = k.channels(k.b.matmul(x, m, false, false, "y_rows"), "y");
  return k.finish("linear_" + std::to_string(ic) + "x" + std::to_string(oc), {y});
}

KernelProgram dual_linear_program(int ic, int oc, int T) {
  Kernel k;
  Var in = k.b.input("x", Type::fp16({1, ic, 1, dual_linear_input_width(oc, T)}));
  Var x1 = k.rows(k.columns(in, ic, 0, T, "act1"), "x1_rows");
  Var x2 = k.rows(k.columns(in, ic, T, T, "act2"), "x2_rows");
  Var m1 = k.b.reshape(k.columns(in, ic, 2 * T, oc, "staged1"), {1, 1, ic, oc}, "m1");
  Var m2 = k.b.reshape(k.columns(in, ic, 2 * T + oc, oc, "staged2"), {1, 1, ic, oc}, "m2");
  Var sum = k.b.add(k.b.matmul(x1, m1, false, false, "y1"), k.b.matmul(x2, m2, false, false, "y2"), "y_rows");
  return k.finish("dual_linear_" + std::to_string(ic) + "x" + std::to_string(oc), {k.channels(sum, "y")});
}

KernelProgram attention_fwd_program(const AttentionShape& a) {
  Kernel k;
  Builder& b = k.b;
  const int C = a.width();
  Var in = b.input("x", Type::fp16({1, 3 * C, 1, a.T}));
  Attention att(k, a, /*inverse=*/false);
  Var q_rope = att.rope(att.heads(in, 0, "q"), "q_rope");
  Var k_rope = att.rope(att.heads(in, C, "k"), "k_rope");
  Var attn = b.matmul(att.probs(q_rope, k_rope), att.heads(in, 2 * C, "v"), false, false, "attn_heads");
  return k.finish("attention_fwd", {b.concat({k.merge_heads(attn, "attn"), k.merge_heads(q_rope, "q_out"),
                                              k.merge_heads(k_rope, "k_out")}, 1, "out")});
}

KernelProgram attention_bwd_program(const AttentionShape& a) {
  Kernel k;
  Builder& b = k.b;
  const int C = a.width();
  Var in = b.input("x", Type::fp16({1, 4 * C, 1, a.T}));
  Attention att(k, a, /*inverse=*/true);
  Var q = att.heads(in, 0, "q");
  Var kk = att.heads(in, C, "k");
  Var v = att.heads(in, 2 * C, "v");
  Var da = att.heads(in, 3 * C, "da");
  Var p = att.probs(q, kk);
  Var dv = b.matmul(p, da, true, false, "dv_heads");  // Pᵀ·dA
  Var dp = b.matmul(da, v, false, true, "dp");        // dA·Vᵀ
  Var rowdot = b.reduce_sum(b.mul(p, dp), {3}, true, "rowdot");
  Var ds = b.mul(b.mul(p, b.sub(dp, rowdot)), 1.0 / std::sqrt(double(a.hd_model)), "ds");
  Var dq = att.rope(b.matmul(ds, kk, false, false, "dq_heads"), "dq_pre");
  Var dk = att.rope(b.matmul(ds, q, true, false, "dk_heads"), "dk_pre");
  return k.finish("attention_bwd", {b.concat({k.merge_heads(dq, "dq"), k.merge_heads(dk, "dk"),
                                              k.merge_heads(dv, "dv")}, 1, "out")});
}

KernelProgram ffn_fwd_program(int D, int F, int T) {
  Kernel k;
  Builder& b = k.b;
  Var in = b.input("x", Type::fp16({1, D, 1, T + 3 * F}));
  Var xn = k.rows(k.columns(in, D, 0, T, "xn"), "xn_rows");
  Var w_gate = b.reshape(k.columns(in, D, T, F, "wg"), {1, 1, D, F}, "w_gate");
  Var w_up = b.reshape(k.columns(in, D, T + F, F, "wu"), {1, 1, D, F}, "w_up");
  Var w_down = b.swap_last_two(b.reshape(k.columns(in, D, T + 2 * F, F, "wd"), {1, 1, D, F}), "w_down_t");
  Var g = b.matmul(xn, w_gate, false, false, "g");
  Var u = b.matmul(xn, w_up, false, false, "u");
  Var h = b.mul(b.mul(g, b.sigmoid(g, "sig")), u, "h");
  Var f = b.matmul(h, w_down, false, false, "f");
  return k.finish("ffn_fwd", {b.concat({k.channels(f, "f_c"), k.channels(g, "g_c"), k.channels(u, "u_c"),
                                        k.channels(h, "h_c")}, 1, "out")});
}

}  // namespace anetrain::ane
