// Which columns and channels of each program's input and output hold what: the layouts that
// programs.h documents and the ane backend's stages fill (backends/ane/). A product program
// can serve several of the backend's kernels (wo_fwd and q_bwd are both qd → D); its regions are
// described for the first of them, the one whose input the dump records.
#include <cstdio>

#include "cli/ane_dump.h"
#include "core/error.h"

namespace anetrain::ane_dump {
namespace {

using ane::LayerShape;

// A weight-bearing product kernel of the backend: y = M1ᵀ·x1 (+ M2ᵀ·x2 when dual), with its
// matrices staged as column blocks.
struct Block {
  std::string what;
  int offset, width;  // within the staged matrix's columns, or within the output's channels
};
struct ProductRole {
  std::string name;
  bool dual;
  int ic, oc;
  std::string x1, x2;
  std::vector<Block> m1, m2, y;
};

// In the order the dump's driver runs the stages, so the first match is the recorded input's.
std::vector<ProductRole> product_roles(const LayerShape& s) {
  const int D = s.D, qd = s.qd(), kvd = s.kvd(), F = s.F;
  return {
      {"qkv_fwd", false, D, qd + 2 * kvd, "xn = RMSNorm(x) * attn_norm", "",
       {{"Wq^T", 0, qd}, {"Wk^T", qd, kvd}, {"Wv^T", qd + kvd, kvd}}, {},
       {{"q (before QK-norm and RoPE)", 0, qd}, {"k (before QK-norm and RoPE)", qd, kvd}, {"v", qd + kvd, kvd}}},
      {"wo_fwd", false, qd, D, "attn (heads concatenated)", "", {{"Wo^T", 0, D}}, {}, {{"o = Wo attn", 0, D}}},
      {"wo_bwd", false, D, qd, "dres = alpha * dout", "", {{"Wo as stored [D, qd]", 0, qd}}, {}, {{"dattn = Wo^T dres", 0, qd}}},
      {"q_bwd", false, qd, D, "dq (gradient of the q projection)", "", {{"Wq as stored [qd, D]", 0, D}}, {},
       {{"Wq^T dq (part of dxn)", 0, D}}},
      {"kv_bwd", true, kvd, D, "dk (gradient of the k projection)", "dv", {{"Wk as stored [kvd, D]", 0, D}},
       {{"Wv as stored [kvd, D]", 0, D}}, {{"Wk^T dk + Wv^T dv (rest of dxn)", 0, D}}},
      {"down_bwd", false, D, F, "dres = alpha * dout", "", {{"W_down as stored [D, F]", 0, F}}, {}, {{"dh = W_down^T dres", 0, F}}},
      {"gate_up_bwd", true, F, D, "dg", "du", {{"W_gate as stored [F, D]", 0, D}}, {{"W_up as stored [F, D]", 0, D}},
       {{"dxn = W_gate^T dg + W_up^T du", 0, D}}},
  };
}

ProgramLayout product_layout(const std::string& name, bool dual, int icp, int oc, const LayerShape& s) {
  ProgramLayout l;
  const std::vector<ProductRole> roles = product_roles(s);
  const ProductRole* first = nullptr;
  for (const ProductRole& r : roles) {
    if (r.dual != dual || ane::ane_round_up(r.ic) != icp || r.oc != oc) continue;
    l.roles.push_back(r.name);
    if (!first) first = &r;
  }
  if (!first) fail("ane dump: the backend compiled '" + name + "', which no kernel of the layout table uses");
  const int T = s.T, Tp = ane::ane_round_up(T), ic = first->ic;
  l.math = dual ? "y[o,t] = sum_c M1[c,o] x1[c,t] + M2[c,o] x2[c,t]" : "y[o,t] = sum_c M[c,o] x[c,t]";
  l.input.push_back({first->x1 + ", token t in column t", 0, ic, 0, T});
  int col = Tp;
  if (dual) {
    l.input.push_back({first->x2 + ", token t in column " + std::to_string(Tp) + "+t", 0, ic, Tp, Tp + T});
    col = 2 * Tp;
  }
  for (const Block& b : first->m1) l.input.push_back({b.what, 0, ic, col + b.offset, col + b.offset + b.width});
  for (const Block& b : first->m2) l.input.push_back({b.what, 0, ic, col + oc + b.offset, col + oc + b.offset + b.width});
  for (const Block& b : first->y) l.output.push_back({b.what, b.offset, b.offset + b.width, 0, T});
  return l;
}

ProgramLayout attention_layout(bool backward, const LayerShape& s) {
  const ane::AttentionShape a = ane::AttentionShape::from(s);
  const int C = a.width(), T = s.T;
  auto heads = [&](const std::string& what, int block) { return Region{what, block * C, (block + 1) * C, 0, T, a.hd, s.hd}; };
  const std::string kv = " of kv head h/(Hq/Hkv), for each query head h";
  ProgramLayout l;
  l.roles = {backward ? "attention_bwd" : "attention_fwd"};
  l.input = {heads("q (after QK-norm)", 0), heads("k" + kv, 1), heads("v" + kv, 2)};
  if (backward) {
    l.input.push_back(heads("dattn", 3));
    l.math = "recompute P = softmax(q k^T / sqrt(hd) + causal mask); dV, dP, dS, dQ, dK; inverse RoPE";
    l.output = {heads("dq (before RoPE)", 0), heads("dk per query head (the CPU sums each kv head's copies)", 1),
                heads("dv per query head (summed likewise)", 2)};
  } else {
    l.math = "RoPE on q and k, then causal softmax(q k^T / sqrt(hd)) v";
    l.output = {heads("attn", 0), heads("q after RoPE", 1), heads("k after RoPE", 2)};
  }
  return l;
}

ProgramLayout ffn_layout(const LayerShape& s) {
  const int T = s.T, Tp = ane::ane_round_up(T), D = s.D, Dp = ane::ane_round_up(D), F = s.F, Fp = ane::ane_round_up(F);
  ProgramLayout l;
  l.roles = {"ffn_fwd"};
  l.math = "g = W_gate xn, u = W_up xn, h = silu(g) u, f = W_down h";
  l.input = {{"xn = RMSNorm(x) * ffn_norm, token t in column t", 0, D, 0, T},
             {"W_gate^T [D, F]", 0, D, Tp, Tp + F},
             {"W_up^T [D, F]", 0, D, Tp + Fp, Tp + Fp + F},
             {"W_down as stored [D, F]", 0, D, Tp + 2 * Fp, Tp + 2 * Fp + F}};
  l.output = {{"f", 0, D, 0, T}, {"g", Dp, Dp + F, 0, T}, {"u", Dp + Fp, Dp + Fp + F, 0, T}, {"h", Dp + 2 * Fp, Dp + 2 * Fp + F, 0, T}};
  return l;
}

ProgramLayout decode_layout(const std::string& kind, const LayerShape& s) {
  const int D = s.D, qd = s.qd(), kvd = s.kvd(), F = s.F;
  ProgramLayout l;
  l.roles = {kind};
  if (kind == "decode_qkv") {
    l.math = "[q; k; v] = [Wq; Wk; Wv] xn (1x1 conv, layer 0's weights baked in)";
    l.input = {{"xn of one token", 0, D, 0, 1}};
    l.output = {{"q", 0, qd, 0, 1}, {"k", qd, qd + kvd, 0, 1}, {"v", qd + kvd, qd + 2 * kvd, 0, 1}};
  } else if (kind == "decode_wo") {
    l.math = "o = Wo attn (1x1 conv, layer 0's weights baked in)";
    l.input = {{"attn of one token", 0, qd, 0, 1}};
    l.output = {{"o", 0, D, 0, 1}};
  } else {
    l.math = "g, u = [W_gate; W_up] xn; h = silu(g) u; f = W_down h (layer 0's weights baked in)";
    l.input = {{"xn of one token", 0, D, 0, 1}};
    l.output = {{"f", 0, D, 0, 1}, {"g", D, D + F, 0, 1}, {"u", D + F, D + 2 * F, 0, 1}, {"h", D + 2 * F, D + 3 * F, 0, 1}};
  }
  return l;
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

}  // namespace

ProgramLayout layout_of(const ane::KernelProgram& k, const LayerShape& s) {
  const std::string& n = k.name;
  int icp = 0, oc = 0;
  if (std::sscanf(n.c_str(), "dual_linear_%dx%d", &icp, &oc) == 2) return product_layout(n, true, icp, oc, s);
  if (std::sscanf(n.c_str(), "linear_%dx%d", &icp, &oc) == 2) return product_layout(n, false, icp, oc, s);
  if (n == "attention_fwd" || n == "attention_bwd") return attention_layout(n == "attention_bwd", s);
  if (n == "ffn_fwd") return ffn_layout(s);
  for (const char* kind : {"decode_qkv", "decode_wo", "decode_ffn"})
    if (starts_with(n, std::string(kind) + "_L")) return decode_layout(kind, s);
  fail("ane dump: the backend compiled '" + n + "', a program whose layout the dump does not know (src/cli/ane_dump_layout.cpp)");
}

}  // namespace anetrain::ane_dump
