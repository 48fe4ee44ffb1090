#include "mil/stats.h"

#include <algorithm>
#include <unordered_map>

#include "mil/blob.h"

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
  const ProducerIndex producer(p);
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
        const Op* c = a->is_literal ? nullptr : producer(a->vars.at(0));
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

MemoryCost memory_cost(const Program& p) {
  MemoryCost c;
  auto fp32_bytes = [](const Type& t) { return 4.0 * double(t.numel()); };
  auto consider = [&](const std::string& name, const Type& t) {
    if (fp32_bytes(t) > c.largest_bytes) c.largest_bytes = fp32_bytes(t), c.largest = name, c.largest_type = t;
  };
  auto is_constant = [](const Op& op) { return op.kind == "const" || op.kind == "constexpr_affine_dequantize"; };
  double held = 0;  // inputs and constants: alive for the whole evaluation
  for (const auto& [name, t] : p.inputs) held += fp32_bytes(t), consider(name, t);
  // The last op reading each computed value; outputs are read "after the last op".
  std::unordered_map<std::string_view, size_t> last_read;
  for (size_t i = 0; i < p.ops.size(); ++i)
    for (const Arg& a : p.ops[i].args)
      for (const std::string& v : a.vars) last_read[v] = i;
  for (const std::string& o : p.outputs) last_read[o] = p.ops.size();
  std::vector<double> freed_after(p.ops.size(), 0.0);
  for (size_t i = 0; i < p.ops.size(); ++i) {
    const Op& op = p.ops[i];
    consider(op.out, op.type);
    if (is_constant(op)) {
      held += fp32_bytes(op.type);
      continue;
    }
    c.value_bytes += double(op.type.numel()) * elem_bytes(op.type.elem);
    auto it = last_read.find(op.out);
    if (it != last_read.end() && it->second > i && it->second < p.ops.size()) freed_after[it->second] += fp32_bytes(op.type);
  }
  double live = 0, peak = 0;
  for (size_t i = 0; i < p.ops.size(); ++i) {
    if (is_constant(p.ops[i])) continue;
    live += fp32_bytes(p.ops[i].type);  // the result exists while its operands do
    peak = std::max(peak, live);
    live -= freed_after[i];
  }
  c.sim_peak_bytes = held + peak;
  return c;
}

}  // namespace anetrain::mil
