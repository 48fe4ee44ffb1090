#include "mil/construct.h"

#include <algorithm>
#include <map>
#include <set>

#include "mil/infer.h"

namespace anetrain::mil {
namespace {

// Arguments that configure an op rather than carry data. Only some of them enter the construct
// (key_params); the rest are sizes (shape, begin, size) or equal in every program (pad).
const std::set<std::string>& parameter_args() {
  static const std::set<std::string> s = {"axes",     "axis",   "perm",   "shape", "begin",     "size",
                                          "transpose_x", "transpose_y", "keep_dims", "interleave", "groups",
                                          "strides",  "pad",    "pad_type", "dilations", "dtype", "output_dtype",
                                          "zero_point"};
  return s;
}

std::string rank_text(const Type& t) { return t.tensor ? "r" + std::to_string(t.rank()) : "scalar"; }

std::string ints_text(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

class Describer {
 public:
  explicit Describer(const Program& p) {
    for (const auto& [name, type] : p.inputs) types_[name] = type;
  }

  Construct describe(const Op& op) {
    Construct c;
    c.op = op.kind;
    if (op.kind == "const") {
      const Literal& v = op.attr("val")->value;
      const char* kind = v.kind == Literal::Kind::blobfile ? "blobfile" : v.kind == Literal::Kind::tensor ? "tensor" : "scalar";
      c.parts.push_back(std::string(kind) + " " + elem_name(v.type.elem) + (v.type.tensor ? " " + rank_text(v.type) : ""));
      constants_.add(op.out, &v);
    } else {
      if (op.kind == "constexpr_affine_dequantize") c.parts.push_back("quantized_data:int8 " + rank_text(op.attr("quantized_data")->value.type));
      std::vector<const Arg*> data;
      for (const Arg& a : op.args)
        if (!parameter_args().count(a.name)) data.push_back(&a);
      std::sort(data.begin(), data.end(), [](const Arg* a, const Arg* b) { return a->name < b->name; });
      const bool elementwise = op.kind == "add" || op.kind == "sub" || op.kind == "mul" || op.kind == "pow";
      for (const Arg* a : data) c.parts.push_back(describe_arg(*a, elementwise ? &op.type : nullptr));
      key_params(op, c.parts);
      c.parts.push_back(std::string("-> ") + elem_name(op.type.elem) + " " + rank_text(op.type));
    }
    types_[op.out] = op.type;
    return c;
  }

 private:
  const Type& type_of(const std::string& var) const { return types_.at(var); }

  std::string describe_arg(const Arg& a, const Type* broadcast_to) const {
    if (a.is_literal) return a.name + ":inline " + rank_text(a.literal.type);
    const Type& t = type_of(a.vars.at(0));  // a tuple's members share one rank (concat checks it)
    std::string s = a.name + ":" + rank_text(t);
    if (broadcast_to && t.tensor && broadcast_to->tensor) {
      const Shape& out = broadcast_to->shape;
      const int R = int(out.size()), r = t.rank();
      std::string axes;
      for (int i = 0; i < R; ++i) {
        const int j = i - (R - r);
        if (j < 0 || (t.shape[size_t(j)] == 1 && out[size_t(i)] != 1)) axes += (axes.empty() ? "" : ",") + std::to_string(i);
      }
      if (!axes.empty()) s += " broadcast@" + axes;
    }
    return s;
  }

  const Literal* constant(const Op& op, const char* name) const { return constants_.arg(op, name); }

  std::string flag(const Op& op, const char* name, bool fallback) const {
    const Literal* l = constant(op, name);
    return std::string(name) + "=" + ((l ? l->as_bool() : fallback) ? "true" : "false");
  }

  int rank_of_x(const Op& op) const {
    const Arg* x = op.arg(op.kind == "concat" ? "values" : "x");
    if (!x || x->is_literal) return 0;
    return type_of(x->vars.at(0)).rank();
  }

  // The parameters that change what the op computes, normalised (negative axes resolved,
  // defaults spelt out) so that equal meanings compare equal.
  void key_params(const Op& op, std::vector<std::string>& parts) const {
    const std::string& k = op.kind;
    const int rank = rank_of_x(op);
    auto axis = [&](const char* name, int64_t fallback) {
      const Literal* l = constant(op, name);
      return std::string(name) + "=" + std::to_string(normalize_axis(l ? l->as_int() : fallback, rank, name));
    };
    if (k == "matmul") {
      parts.push_back(flag(op, "transpose_x", false));
      parts.push_back(flag(op, "transpose_y", false));
    } else if (k == "softmax") {
      parts.push_back(axis("axis", -1));
    } else if (k == "concat") {
      parts.push_back(axis("axis", 0));
      parts.push_back(flag(op, "interleave", false));
    } else if (k == "transpose") {
      parts.push_back("perm=" + ints_text(constant(op, "perm")->as_ints()));
    } else if (k == "reduce_sum") {
      const Literal* l = constant(op, "axes");
      std::vector<int64_t> axes;
      if (l)
        for (int64_t a : l->as_ints()) axes.push_back(normalize_axis(a, rank, "axes"));
      std::sort(axes.begin(), axes.end());
      parts.push_back(l ? "axes=" + ints_text(axes) : "axes=all");
      parts.push_back(flag(op, "keep_dims", false));
    } else if (k == "conv") {
      const Literal* groups = constant(op, "groups");
      const Literal* pad_type = constant(op, "pad_type");
      const Literal* strides = constant(op, "strides");
      const Literal* dilations = constant(op, "dilations");
      const Shape& w = type_of(op.arg("weight")->vars.at(0)).shape;
      parts.push_back(std::string("groups") + (groups && groups->as_int() > 1 ? ">1" : "=1"));
      parts.push_back("kernel=" + std::to_string(w.at(2)) + "x" + std::to_string(w.at(3)));
      parts.push_back("pad_type=" + (pad_type ? pad_type->str : std::string("valid")));
      parts.push_back("strides=" + (strides ? ints_text(strides->as_ints()) : "[1,1]"));
      parts.push_back("dilations=" + (dilations ? ints_text(dilations->as_ints()) : "[1,1]"));
    } else if (k == "cast") {
      parts.push_back("dtype=" + constant(op, "dtype")->str);
    } else if (k == "quantize") {
      parts.push_back("output_dtype=" + constant(op, "output_dtype")->str);
    }
  }

  std::map<std::string, Type> types_;
  ConstantTable constants_;
};

}  // namespace

std::string Construct::key() const {
  std::string inner, result;
  for (const std::string& p : parts) {
    if (p.rfind("-> ", 0) == 0) result = " " + p;
    else inner += (inner.empty() ? "" : ", ") + p;
  }
  return op + "(" + inner + ")" + result;
}

Construct Construct::from_key(const std::string& key) {
  Construct c;
  const size_t open = key.find('(');
  const size_t arrow = key.rfind(") -> ");
  const size_t close = arrow != std::string::npos ? arrow : key.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) mil_fail("not a construct: '" + key + "'");
  c.op = key.substr(0, open);
  const std::string inner = key.substr(open + 1, close - open - 1);
  for (size_t at = 0; at < inner.size();) {
    size_t next = inner.find(", ", at);
    if (next == std::string::npos) next = inner.size();
    c.parts.push_back(inner.substr(at, next - at));
    at = next + 2;
  }
  if (arrow != std::string::npos) c.parts.push_back(key.substr(arrow + 2));
  return c;
}

int Construct::shared_parts(const Construct& other) const {
  int n = 0;
  for (const std::string& p : parts) n += std::count(other.parts.begin(), other.parts.end(), p) > 0;
  return n;
}

std::vector<Construct> program_constructs(const Program& p) {
  Describer d(p);
  std::vector<Construct> out;
  out.reserve(p.ops.size());
  for (const Op& op : p.ops) out.push_back(d.describe(op));
  return out;
}

}  // namespace anetrain::mil
