// One-token programs with baked weights, for generation (see programs.h).
#include <string>

#include "backends/ane/programs.h"
#include "mil/builder.h"

namespace anetrain::ane {


namespace {

// A [rows, cols] weight (rows = output channels) as a conv weight [rows, cols, 1, 1] in its own
// blob file; several matrices stacked by rows make one fused projection.
Var conv_weight(Builder& b, KernelProgram& k, const std::string& name, const std::vector<const float*>& parts,
                const std::vector<int>& rows, int cols) {
  std::vector<float> all;
  int total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    all.insert(all.end(), parts[i], parts[i] + size_t(rows[i]) * cols);
    total += rows[i];
  }
  return add_fp16_blob(b, k, name, {total, cols, 1, 1}, all);
}

KernelProgram finish(Builder& b, KernelProgram& k, const std::string& name, const Var& out) {
  k.name = name;
  k.program = b.finish({out});
  return std::move(k);
}

}  // namespace

KernelProgram decode_qkv_program(const LayerShape& s, const LayerWeights& w, int layer) {
  Builder b;
  KernelProgram k;
  Var x = b.input("x", Type::fp16({1, s.D, 1, kAneAlign}));
  Var wqkv = conv_weight(b, k, "wqkv", {w.wq, w.wk, w.wv}, {s.qd(), s.kvd(), s.kvd()}, s.D);
  return finish(b, k, "decode_qkv_L" + std::to_string(layer), b.conv(x, wqkv, 1, "qkv"));
}

KernelProgram decode_wo_program(const LayerShape& s, const LayerWeights& w, int layer) {
  Builder b;
  KernelProgram k;
  Var x = b.input("x", Type::fp16({1, s.qd(), 1, kAneAlign}));
  Var wo = conv_weight(b, k, "wo", {w.wo}, {s.D}, s.qd());
  return finish(b, k, "decode_wo_L" + std::to_string(layer), b.conv(x, wo, 1, "o"));
}

KernelProgram decode_ffn_program(const LayerShape& s, const LayerWeights& w, int layer) {
  Builder b;
  KernelProgram k;
  Var x = b.input("x", Type::fp16({1, s.D, 1, kAneAlign}));
  Var w_gu = conv_weight(b, k, "w_gate_up", {w.w_gate, w.w_up}, {s.F, s.F}, s.D);
  Var gu = b.conv(x, w_gu, 1, "gu");
  Var g = b.slice(gu, {0, 0, 0, 0}, {1, s.F, 1, kAneAlign}, "g");
  Var u = b.slice(gu, {0, s.F, 0, 0}, {1, s.F, 1, kAneAlign}, "u");
  Var h = b.mul(b.mul(g, b.sigmoid(g, "sig")), u, "h");
  Var f = b.conv(h, conv_weight(b, k, "w_down", {w.w_down}, {s.D}, s.F), 1, "f");
  return finish(b, k, "decode_ffn_L" + std::to_string(layer), b.concat({f, g, u, h}, 1, "out"));
}

}  // namespace anetrain::ane
