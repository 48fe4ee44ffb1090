#include "ane/kernels/programs.h"

#include <cmath>

#include "ane/mil/blob.h"
#include "ane/mil/builder.h"

namespace anetrain::ane {

using mil::Builder;
using mil::ElemType;
using mil::Type;
using mil::Var;

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
  // [1, 1, T, n·hd] or [1, n·hd, 1, T] → [1, n, T, hd]
  Var heads(const Var& x, int n, int hd, int T, const std::string& name) {
    Var cf = x.shape()[1] == 1 ? b.swap_last_two(x) : b.reshape(x, {1, 1, n * hd, T});
    return b.swap_last_two(b.reshape(cf, {1, n, hd, T}), name);
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

// cos/sin of pair p's angle at every column that belongs to pair p, for positions 0..T-1.
std::vector<float> rope_table(const LayerShape& s, bool sine) {
  std::vector<float> t(size_t(s.T) * s.hd);
  const int half = s.hd / 2;
  for (int pos = 0; pos < s.T; ++pos)
    for (int j = 0; j < s.hd; ++j) {
      int p = s.rope == RopeStyle::interleaved ? j / 2 : j % half;
      double angle = double(pos) * std::pow(double(s.theta), -2.0 * p / s.hd);
      t[size_t(pos) * s.hd + j] = float(sine ? std::sin(angle) : std::cos(angle));
    }
  return t;
}

// Everything attention needs in both directions: RoPE tables, the mask, the GQA pairing.
struct Attention {
  Kernel& k;
  const LayerShape& s;
  Var cos, sin, mask;

  Attention(Kernel& kernel, const LayerShape& shape) : k(kernel), s(shape) {
    cos = k.blob("rope_cos", {1, 1, s.T, s.hd}, rope_table(s, false));
    sin = k.blob("rope_sin", {1, 1, s.T, s.hd}, rope_table(s, true));
    mask = k.blob("mask", {1, 1, s.T, s.T}, causal_mask(s.T));
  }
  // The partner of each element in its RoPE pair, with the sign of the rotation: (−x_b, x_a).
  Var rotate_half(const Var& h, int n) {
    Builder& b = k.b;
    if (s.rope == RopeStyle::interleaved) {  // pairs (2p, 2p+1) are adjacent
      const int pairs = s.T * s.hd / 2;
      Var p = b.reshape(h, {1, n, pairs, 2});
      Var even = b.slice(p, {0, 0, 0, 0}, {1, n, pairs, 1});
      Var odd = b.slice(p, {0, 0, 0, 1}, {1, n, pairs, 1});
      return b.reshape(b.concat({b.mul(odd, -1.0), even}, 3), {1, n, s.T, s.hd});
    }
    const int half = s.hd / 2;  // pairs (p, p + hd/2)
    Var lo = b.slice(h, {0, 0, 0, 0}, {1, n, s.T, half});
    Var hi = b.slice(h, {0, 0, 0, half}, {1, n, s.T, half});
    return b.concat({b.mul(hi, -1.0), lo}, 3);
  }
  // x·cos + rotate_half(x)·sin; the backward is the inverse rotation x·cos − rotate_half(x)·sin.
  Var rope(const Var& h, int n, bool inverse, const std::string& name) {
    Builder& b = k.b;
    Var turned = b.mul(rotate_half(h, n), sin);
    Var kept = b.mul(h, cos);
    return inverse ? b.sub(kept, turned, name) : b.add(kept, turned, name);
  }
  // Query head h reads kv head h / (Hq/Hkv): repeat each kv head `ratio` times in place.
  Var tile_kv(const Var& h, const std::string& name) {
    const int ratio = s.Hq / s.Hkv;
    if (ratio == 1) return h;
    Builder& b = k.b;
    Var grouped = b.reshape(h, {s.Hkv, 1, s.T, s.hd});
    return b.reshape(b.concat(std::vector<Var>(size_t(ratio), grouped), 1), {1, s.Hq, s.T, s.hd}, name);
  }
  // The transpose of tile_kv: sum the gradients of the query heads that share a kv head.
  Var reduce_kv(const Var& h, const std::string& name) {
    const int ratio = s.Hq / s.Hkv;
    if (ratio == 1) return h;
    Builder& b = k.b;
    Var grouped = b.reshape(h, {s.Hkv, ratio, s.T, s.hd});
    return b.reshape(b.reduce_sum(grouped, {1}, true), {1, s.Hkv, s.T, s.hd}, name);
  }
  // softmax(q·kᵀ/√hd + mask) over keys.
  Var probs(const Var& q, const Var& k_tiled) {
    Builder& b = k.b;
    Var scores = b.mul(b.matmul(q, k_tiled, false, true, "scores"), 1.0 / std::sqrt(double(s.hd)), "scaled");
    return b.softmax(b.add(scores, mask, "masked"), -1, "probs");
  }
};

}  // namespace

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

KernelProgram linear_program(int ic, int oc, int T) {
  Kernel k;
  Var in = k.b.input("x", Type::fp16({1, ic, 1, T + oc}));
  Var x = k.rows(k.columns(in, ic, 0, T, "act"), "x_rows");
  Var m = k.b.reshape(k.columns(in, ic, T, oc, "staged"), {1, 1, ic, oc}, "m");
  Var y = k.channels(k.b.matmul(x, m, false, false, "y_rows"), "y");
  return k.finish("linear_" + std::to_string(ic) + "x" + std::to_string(oc), {y});
}

KernelProgram dual_linear_program(int ic, int oc, int T) {
  Kernel k;
  Var in = k.b.input("x", Type::fp16({1, ic, 1, 2 * T + 2 * oc}));
  Var x1 = k.rows(k.columns(in, ic, 0, T, "act1"), "x1_rows");
  Var x2 = k.rows(k.columns(in, ic, T, T, "act2"), "x2_rows");
  Var m1 = k.b.reshape(k.columns(in, ic, 2 * T, oc, "staged1"), {1, 1, ic, oc}, "m1");
  Var m2 = k.b.reshape(k.columns(in, ic, 2 * T + oc, oc, "staged2"), {1, 1, ic, oc}, "m2");
  Var sum = k.b.add(k.b.matmul(x1, m1, false, false, "y1"), k.b.matmul(x2, m2, false, false, "y2"), "y_rows");
  return k.finish("dual_linear_" + std::to_string(ic) + "x" + std::to_string(oc), {k.channels(sum, "y")});
}

int attention_fwd_input_width(const LayerShape& s) { return s.T + s.qd() + 2 * s.kvd() + (s.qk_norm ? 2 : 0); }
int attention_fwd_output_channels(const LayerShape& s) {
  return 2 * s.qd() + 2 * s.kvd() + (s.qk_norm ? s.qd() + s.kvd() + s.Hq + s.Hkv : 0);
}

KernelProgram attention_fwd_program(const LayerShape& s) {
  Kernel k;
  Builder& b = k.b;
  const int T = s.T, D = s.D, qd = s.qd(), kvd = s.kvd(), W = attention_fwd_input_width(s);
  Var in = b.input("x", Type::fp16({1, D, 1, W}));
  Attention att(k, s);
  Var xn = k.rows(k.columns(in, D, 0, T, "xn"), "xn_rows");
  auto project = [&](int col, int n, const std::string& name) {
    Var w = b.reshape(k.columns(in, D, col, n * s.hd, "w" + name), {1, 1, D, n * s.hd}, "w" + name + "_m");
    return b.matmul(xn, w, false, false, name + "_rows");  // [1, 1, T, n·hd]
  };
  Var q = k.heads(project(T, s.Hq, "q"), s.Hq, s.hd, T, "q_heads");
  Var kk = k.heads(project(T + qd, s.Hkv, "k"), s.Hkv, s.hd, T, "k_heads");
  Var v = k.heads(project(T + qd + kvd, s.Hkv, "v"), s.Hkv, s.hd, T, "v_heads");
  std::vector<Var> extra;
  if (s.qk_norm) {
    // RMSNorm over each head's hd values. Scaling by 1/√hd before squaring keeps the sum equal to
    // the mean square, so it cannot overflow fp16 while the mean square itself fits.
    auto norm = [&](const Var& h, int n, int col, const std::string& name, Var& rstd) {
      Var w = b.reshape(b.slice(in, {0, 0, 0, col}, {1, s.hd, 1, 1}), {1, 1, 1, s.hd}, name + "_w");
      Var scaled = b.mul(h, 1.0 / std::sqrt(double(s.hd)), name + "_s");
      Var ms = b.reduce_sum(b.mul(scaled, scaled), {3}, true, name + "_ms");
      rstd = b.pow(b.add(ms, double(s.eps)), -0.5, name + "_rstd");
      return b.mul(b.mul(h, rstd), w, name);
    };
    Var q_rstd, k_rstd;
    Var qn = norm(q, s.Hq, W - 2, "qn", q_rstd);
    Var kn = norm(kk, s.Hkv, W - 1, "kn", k_rstd);
    extra = {k.merge_heads(q, "q_raw"), k.merge_heads(kk, "k_raw"), b.reshape(q_rstd, {1, s.Hq, 1, T}, "q_rstd_c"),
             b.reshape(k_rstd, {1, s.Hkv, 1, T}, "k_rstd_c")};
    q = qn;
    kk = kn;
  }
  Var q_rope = att.rope(q, s.Hq, false, "q_rope");
  Var k_rope = att.rope(kk, s.Hkv, false, "k_rope");
  Var p = att.probs(q_rope, att.tile_kv(k_rope, "k_tiled"));
  Var attn = b.matmul(p, att.tile_kv(v, "v_tiled"), false, false, "attn_heads");
  std::vector<Var> outs = {k.merge_heads(attn, "attn"), k.merge_heads(q_rope, "q_out"), k.merge_heads(k_rope, "k_out"),
                           k.merge_heads(v, "v_out")};
  outs.insert(outs.end(), extra.begin(), extra.end());
  return k.finish("attention_fwd", {b.concat(outs, 1, "out")});
}

KernelProgram attention_bwd_program(const LayerShape& s) {
  Kernel k;
  Builder& b = k.b;
  const int T = s.T, qd = s.qd(), kvd = s.kvd();
  Var in = b.input("x", Type::fp16({1, 2 * qd + 2 * kvd, 1, T}));
  Attention att(k, s);
  auto part = [&](int ch, int n, const std::string& name) {
    return k.heads(b.slice(in, {0, ch, 0, 0}, {1, n * s.hd, 1, T}), n, s.hd, T, name);
  };
  Var q = part(0, s.Hq, "q");
  Var kk = att.tile_kv(part(qd, s.Hkv, "k"), "k_tiled");
  Var v = att.tile_kv(part(qd + kvd, s.Hkv, "v"), "v_tiled");
  Var da = part(qd + 2 * kvd, s.Hq, "da");
  Var p = att.probs(q, kk);
  Var dv = b.matmul(p, da, true, false, "dv_heads");  // Pᵀ·dA
  Var dp = b.matmul(da, v, false, true, "dp");        // dA·Vᵀ
  Var rowdot = b.reduce_sum(b.mul(p, dp), {3}, true, "rowdot");
  Var ds = b.mul(b.mul(p, b.sub(dp, rowdot)), 1.0 / std::sqrt(double(s.hd)), "ds");
  Var dq = b.matmul(ds, kk, false, false, "dq_heads");
  Var dk = b.matmul(ds, q, true, false, "dk_heads");
  Var dq_pre = att.rope(dq, s.Hq, true, "dq_pre");
  Var dk_pre = att.rope(att.reduce_kv(dk, "dk_kv"), s.Hkv, true, "dk_pre");
  Var dv_kv = att.reduce_kv(dv, "dv_kv");
  return k.finish("attention_bwd", {b.concat({k.merge_heads(dq_pre, "dq"), k.merge_heads(dk_pre, "dk"),
                                              k.merge_heads(dv_kv, "dv")}, 1, "out")});
}

KernelProgram ffn_fwd_program(const LayerShape& s) {
  Kernel k;
  Builder& b = k.b;
  const int T = s.T, D = s.D, F = s.F;
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
