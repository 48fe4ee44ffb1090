#include "mil/builder.h"

#include "mil/infer.h"

namespace anetrain::mil {

Builder::Builder() { program_.build_info = default_build_info(); }

std::string Builder::fresh(const std::string& hint) {
  if (!values_.count(hint)) return hint;
  for (int i = 1;; ++i) {
    std::string n = hint + "_" + std::to_string(i);
    if (!values_.count(n)) return n;
  }
}

Var Builder::record(const Op& op) {
  program_.ops.push_back(op);
  const Literal* constant = nullptr;
  if (op.kind == "const") constant = &(const_values_[op.out] = op.attr("val")->value);
  infos_[op.out] = ValueInfo{op.type, constant};
  return values_[op.out] = Var{op.out, op.type};
}

Var Builder::input(const std::string& name, Type type) {
  if (!program_.ops.empty()) mil_fail("input '" + name + "' declared after the first op");
  if (values_.count(name)) mil_fail("input '" + name + "' declared twice");
  if (!type.tensor) mil_fail("input '" + name + "' must be a tensor");
  program_.inputs.emplace_back(name, type);
  infos_[name] = ValueInfo{type, nullptr};
  return values_[name] = Var{name, type};
}

Var Builder::add_const(const Literal& value, const std::string& hint) {
  std::string key = value.str_literal();
  bool shareable = value.kind != Literal::Kind::blobfile;
  if (shareable && hint.empty()) {
    auto it = shared_consts_.find(key);
    if (it != shared_consts_.end()) return it->second;
  }
  Op op;
  op.kind = "const";
  // Unnamed consts are c_0, c_1, ...: a reserved-looking pattern, so user names rarely collide.
  op.out = hint.empty() ? fresh("c_" + std::to_string(next_const_++)) : fresh(hint);
  op.type = value.type;
  op.attrs = {{"name", Literal::of_string(op.out)}, {"val", value}};
  Var v = record(op);
  if (shareable && hint.empty()) shared_consts_[key] = v;
  return v;
}

Var Builder::scalar(double v, ElemType e, const std::string& name) {
  Literal l = is_float(e) ? Literal::of_float(e, v) : e == ElemType::boolean ? Literal::of_bool(v != 0) : Literal::of_int32(int64_t(v));
  return add_const(l, name);
}
Var Builder::flag(bool v) { return add_const(Literal::of_bool(v), ""); }
Var Builder::ints(const std::vector<int64_t>& v, const std::string& name) { return add_const(Literal::of_ints(v), name); }
Var Builder::text(const std::string& s, const std::string& name) { return add_const(Literal::of_string(s), name); }
Var Builder::tensor(const std::string& name, Type type, std::vector<double> values) {
  return add_const(Literal::of_tensor(std::move(type), std::move(values)), name);
}
Var Builder::blob(const std::string& name, Type type, const std::string& path, uint64_t offset) {
  return add_const(Literal::of_blob(std::move(type), path, offset), name.empty() ? "w" : name);
}

Var Builder::affine_dequantize(const std::string& name, Type int8_type, const std::string& path, uint64_t offset,
                               double scale, int zero_point, int axis) {
  Op op;
  op.kind = "constexpr_affine_dequantize";
  op.out = fresh(name);
  Literal zp = Literal::of_int32(zero_point);
  zp.type.elem = ElemType::int8;
  op.attrs = {{"axis", Literal::of_int32(axis)},
              {"name", Literal::of_string(op.out)},
              {"quantized_data", Literal::of_blob(int8_type, path, offset)},
              {"scale", Literal::of_float(ElemType::fp16, scale)},
              {"zero_point", zp}};
  op.type = infer_type(op, [](const std::string&) -> const ValueInfo* { return nullptr; });
  return record(op);
}

Var Builder::add_op(const std::string& kind, std::vector<std::pair<std::string, Var>> args, const std::string& name,
                    const std::vector<Var>& tuple) {
  if (finished_) mil_fail("the program is already finished");
  Op op;
  op.kind = kind;
  // An unnamed result is never called after its op ("reshape = reshape(...)"): programs whose
  // variables shadow op names are outside what the seed's programs did (mil check --strict).
  op.out = fresh(name.empty() ? "v_" + kind : name);
  if (!name.empty() && op.out != name) mil_fail(kind + ": the name '" + name + "' is already taken");
  if (!tuple.empty()) {
    Arg a;
    a.name = "values";
    a.tuple = true;
    for (const Var& v : tuple) a.vars.push_back(v.name);
    op.args.push_back(a);
  }
  for (auto& [param, v] : args) {
    Arg a;
    a.name = param;
    a.vars = {v.name};
    op.args.push_back(a);
  }
  op.attrs = {{"name", Literal::of_string(op.out)}};
  op.type = infer_type(op, [&](const std::string& var) -> const ValueInfo* {
    auto it = infos_.find(var);
    return it == infos_.end() ? nullptr : &it->second;
  });
  return record(op);
}

Var Builder::matmul(const Var& x, const Var& y, bool tx, bool ty, const std::string& name) {
  return add_op("matmul", {{"transpose_x", flag(tx)}, {"transpose_y", flag(ty)}, {"x", x}, {"y", y}}, name);
}

Var Builder::conv(const Var& x, const Var& weight, int groups, const std::string& name) {
  return add_op("conv", {{"dilations", ints({1, 1}, "")}, {"groups", scalar(groups, ElemType::int32)},
                         {"pad", ints({0, 0, 0, 0})}, {"pad_type", text("valid")}, {"strides", ints({1, 1})},
                         {"weight", weight}, {"x", x}}, name);
}

Var Builder::add(const Var& x, const Var& y, const std::string& name) { return add_op("add", {{"x", x}, {"y", y}}, name); }
Var Builder::sub(const Var& x, const Var& y, const std::string& name) { return add_op("sub", {{"x", x}, {"y", y}}, name); }
Var Builder::mul(const Var& x, const Var& y, const std::string& name) { return add_op("mul", {{"x", x}, {"y", y}}, name); }
Var Builder::pow(const Var& x, const Var& y, const std::string& name) { return add_op("pow", {{"x", x}, {"y", y}}, name); }
Var Builder::add(const Var& x, double y, const std::string& name) { return add(x, scalar(y, x.type.elem), name); }
Var Builder::mul(const Var& x, double y, const std::string& name) { return mul(x, scalar(y, x.type.elem), name); }
Var Builder::pow(const Var& x, double y, const std::string& name) { return pow(x, scalar(y, x.type.elem), name); }

Var Builder::reshape(const Var& x, const Shape& shape, const std::string& name) {
  return add_op("reshape", {{"shape", ints(shape)}, {"x", x}}, name);
}
Var Builder::transpose(const Var& x, const std::vector<int64_t>& perm, const std::string& name) {
  return add_op("transpose", {{"perm", ints(perm)}, {"x", x}}, name);
}
Var Builder::swap_last_two(const Var& x, const std::string& name) {
  std::vector<int64_t> perm(size_t(x.type.rank()));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = int64_t(i);
  if (perm.size() < 2) mil_fail("swap_last_two: '" + x.name + "' " + x.type.str() + " has fewer than two axes");
  std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
  return transpose(x, perm, name);
}
Var Builder::slice(const Var& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& size, const std::string& name) {
  return add_op("slice_by_size", {{"x", x}, {"begin", ints(begin)}, {"size", ints(size)}}, name);
}
Var Builder::concat(const std::vector<Var>& values, int axis, const std::string& name) {
  return add_op("concat", {{"axis", scalar(axis, ElemType::int32)}, {"interleave", flag(false)}}, name, values);
}
Var Builder::reduce_sum(const Var& x, const std::vector<int64_t>& axes, bool keep_dims, const std::string& name) {
  return add_op("reduce_sum", {{"x", x}, {"axes", ints(axes)}, {"keep_dims", flag(keep_dims)}}, name);
}
Var Builder::softmax(const Var& x, int axis, const std::string& name) {
  return add_op("softmax", {{"axis", scalar(axis, ElemType::int32)}, {"x", x}}, name);
}
Var Builder::sigmoid(const Var& x, const std::string& name) { return add_op("sigmoid", {{"x", x}}, name); }
Var Builder::cast(const Var& x, ElemType to, const std::string& name) {
  return add_op("cast", {{"dtype", text(elem_name(to))}, {"x", x}}, name);
}
Var Builder::quantize(const Var& x, double scale, const std::string& name) {
  return add_op("quantize", {{"input", x}, {"output_dtype", text("int8")}, {"scale", scalar(scale, x.type.elem)}}, name);
}
Var Builder::dequantize(const Var& q, double scale, const std::string& name) {
  return add_op("dequantize", {{"input", q}, {"scale", scalar(scale, ElemType::fp16)}}, name);
}
Var Builder::sdpa(const Var& q, const Var& k, const Var& v, const std::string& name, const Var* attn_mask) {
  std::vector<std::pair<std::string, Var>> args = {{"query", q}, {"key", k}, {"value", v}};
  if (attn_mask) args.emplace_back("attn_mask", *attn_mask);
  return add_op("scaled_dot_product_attention", std::move(args), name);
}

Program Builder::finish(const std::vector<Var>& outputs) {
  if (finished_) mil_fail("the program is already finished");
  if (outputs.empty()) mil_fail("a program needs at least one output");
  for (const Var& o : outputs) {
    if (!values_.count(o.name)) mil_fail("output '" + o.name + "' is not a value of this program");
    program_.outputs.push_back(o.name);
  }
  finished_ = true;
  return program_;
}

}  // namespace anetrain::mil
