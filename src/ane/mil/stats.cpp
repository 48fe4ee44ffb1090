#include "ane/mil/stats.h"

#include <algorithm>

#include "ane/mil/blob.h"

namespace anetrain::mil {

ProgramStats program_stats(const Program& p) {
  ProgramStats s;
  std::map<std::string, Type> types;
  for (const auto& [name, t] : p.inputs) {
    types[name] = t;
    s.input_bytes += uint64_t(t.numel()) * elem_bytes(t.elem);
  }
  auto type_of = [&](const Op& op, const char* arg) -> const Type& { return types.at(op.arg(arg)->vars.at(0)); };
  for (const Op& op : p.ops) {
    types[op.out] = op.type;
    for (const Attr& a : op.attrs)
      if (a.value.kind == Literal::Kind::blobfile) s.blob_bytes += uint64_t(a.value.type.numel()) * elem_bytes(a.value.type.elem);
    if (op.kind == "const" || op.kind == "constexpr_affine_dequantize") {
      s.consts++;
      continue;
    }
    s.ops++;
    s.by_kind[op.kind]++;
    double n = double(op.type.numel());
    if (op.kind == "matmul" || op.kind == "conv") {
      continue;  // counted below, from matrix_products
    } else if (op.kind == "scaled_dot_product_attention") {
      const Type& q = type_of(op, "query");
      const Type& k = type_of(op, "key");
      double L = double(q.shape[q.shape.size() - 2]), E = double(q.shape.back()), S = double(k.shape[k.shape.size() - 2]);
      double batch = double(q.numel()) / (L * E);
      s.matrix_flops += batch * (2 * L * S * E + 2 * L * S * double(op.type.shape.back()));
    } else if (op.kind != "reshape" && op.kind != "transpose" && op.kind != "slice_by_size" && op.kind != "concat") {
      double in = op.arg("x") ? double(type_of(op, "x").numel()) : n;
      s.other_flops += op.kind == "softmax" ? 4 * n : std::max(in, n);
    }
  }
  for (const MatrixProduct& g : matrix_products(p)) s.matrix_flops += 2.0 * double(g.batch * g.m) * double(g.n * g.k);
  for (const std::string& o : p.outputs) {
    const Type& t = types.at(o);
    s.output_bytes += uint64_t(t.numel()) * elem_bytes(t.elem);
  }
  return s;
}

std::vector<MatrixProduct> matrix_products(const Program& p) {
  std::map<std::string, Type> types;
  for (const auto& [name, t] : p.inputs) types[name] = t;
  std::vector<MatrixProduct> out;
  for (const Op& op : p.ops) {
    types[op.out] = op.type;
    const Type& t = op.type;
    if (op.kind == "matmul") {
      const Type& x = types.at(op.arg("x")->vars.at(0));
      bool tx = false;
      if (const Arg* a = op.arg("transpose_x")) {
        const Op* c = a->is_literal ? nullptr : p.producer(a->vars.at(0));
        tx = a->is_literal ? a->literal.as_bool() : c && c->kind == "const" && c->attr("val")->value.as_bool();
      }
      const int64_t m = t.shape[t.shape.size() - 2], n = t.shape.back();
      const int64_t k = tx ? x.shape[x.shape.size() - 2] : x.shape.back();
      out.push_back({t.numel() / (m * n), m, n, k});
    } else if (op.kind == "conv") {
      const Type& w = types.at(op.arg("weight")->vars.at(0));
      out.push_back({t.shape[0], w.shape[0], t.shape[2] * t.shape[3], w.shape[1] * w.shape[2] * w.shape[3]});
    }
  }
  return out;
}

}  // namespace anetrain::mil
