#include "mil/infer.h"

#include <algorithm>
#include <map>
#include <set>

namespace anetrain::mil {
namespace {

struct Param {
  const char* name;
  bool required;
};

// Parameter names follow coremltools' op definitions (coremltools/converters/mil/mil/ops/defs).
const std::map<std::string, std::vector<Param>>& signatures() {
  static const std::map<std::string, std::vector<Param>> s = {
      {"const", {}},
      {"constexpr_affine_dequantize", {}},
      {"cast", {{"x", true}, {"dtype", true}}},
      {"conv", {{"x", true}, {"weight", true}, {"bias", false}, {"strides", false}, {"pad_type", false},
                {"pad", false}, {"dilations", false}, {"groups", false}}},
      {"matmul", {{"x", true}, {"y", true}, {"transpose_x", false}, {"transpose_y", false}}},
      {"reshape", {{"x", true}, {"shape", true}}},
      {"transpose", {{"x", true}, {"perm", true}}},
      {"slice_by_size", {{"x", true}, {"begin", true}, {"size", true}}},
      {"concat", {{"values", true}, {"axis", true}, {"interleave", false}}},
      {"mul", {{"x", true}, {"y", true}}},
      {"add", {{"x", true}, {"y", true}}},
      {"sub", {{"x", true}, {"y", true}}},
      {"pow", {{"x", true}, {"y", true}}},
      {"reduce_sum", {{"x", true}, {"axes", false}, {"keep_dims", false}}},
      {"softmax", {{"x", true}, {"axis", false}}},
      {"sigmoid", {{"x", true}}},
      {"quantize", {{"input", true}, {"scale", true}, {"zero_point", false}, {"axis", false}, {"output_dtype", true}}},
      {"dequantize", {{"input", true}, {"scale", true}, {"zero_point", false}, {"axis", false}}},
      {"scaled_dot_product_attention", {{"query", true}, {"key", true}, {"value", true}, {"attn_mask", false}}},
  };
  return s;
}

class Checker {
 public:
  Checker(const Op& op, const Lookup& lookup) : op_(op), lookup_(lookup) {}

  // "kind 'label': " — both excerpts, since either may be any length of input text.
  std::string prefix() const { return excerpt(op_.kind) + " '" + excerpt(op_.label()) + "': "; }
  [[noreturn]] void fail(const std::string& msg) const { mil_fail(prefix() + msg); }

  void check_args() const {
    auto sig = signatures().find(op_.kind);
    if (sig == signatures().end()) fail("unknown op (known: " + join(known_ops()) + ")");
    std::set<std::string> seen;
    for (const Arg& a : op_.args) {
      bool known = std::any_of(sig->second.begin(), sig->second.end(), [&](const Param& p) { return a.name == p.name; });
      if (!known) fail("no parameter named '" + excerpt(a.name) + "'");
      if (!seen.insert(a.name).second) fail("parameter '" + a.name + "' given twice");
      if (a.tuple != (a.name == "values")) fail("parameter '" + a.name + (a.tuple ? "' takes one value, not a tuple" : "' takes a tuple"));
      if (!a.is_literal)
        for (const std::string& v : a.vars)
          if (!lookup_(v)) fail("'" + excerpt(v) + "' (for " + excerpt(a.name) + ") is not defined before this op");
    }
    for (const Param& p : sig->second)
      if (p.required && !seen.count(p.name)) fail(std::string("missing parameter '") + p.name + "'");
  }

  bool has(const char* name) const { return op_.arg(name) != nullptr; }

  const Type& type_of(const char* name) const {
    const Arg* a = op_.arg(name);
    if (a->is_literal) return a->literal.type;
    return lookup_(a->vars.at(0))->type;
  }

  const Type& tensor(const char* name) const {
    const Type& t = type_of(name);
    if (!t.tensor) fail(std::string(name) + " must be a tensor, got " + t.str());
    return t;
  }

  // Arguments the compiler must know at compile time: shapes, axes, flags.
  const Literal& constant(const char* name) const {
    const Arg* a = op_.arg(name);
    if (a->is_literal) return a->literal;
    const ValueInfo* v = lookup_(a->vars.at(0));
    if (!v->constant) fail(std::string(name) + " must be a const, '" + a->vars[0] + "' is computed");
    if (v->constant->kind == Literal::Kind::blobfile) fail(std::string(name) + " must be an inline const, not a BLOBFILE");
    return *v->constant;
  }

  std::vector<int64_t> ints(const char* name, size_t expected_len) const {
    const Literal& l = constant(name);
    if (l.type.elem != ElemType::int32 || !l.type.tensor) fail(std::string(name) + " must be an int32 tensor, got " + l.type.str());
    std::vector<int64_t> v = l.as_ints();
    if (expected_len && v.size() != expected_len)
      fail(std::string(name) + " has " + std::to_string(v.size()) + " entries, needs " + std::to_string(expected_len));
    return v;
  }

  int64_t scalar_int(const char* name) const {
    const Literal& l = constant(name);
    if (l.type.tensor || l.type.elem != ElemType::int32) fail(std::string(name) + " must be an int32 scalar, got " + l.type.str());
    return l.as_int();
  }

  bool flag(const char* name, bool fallback) const {
    if (!has(name)) return fallback;
    const Literal& l = constant(name);
    if (l.type.tensor || l.type.elem != ElemType::boolean) fail(std::string(name) + " must be a bool, got " + l.type.str());
    return l.as_bool();
  }

  std::string text(const char* name) const {
    const Literal& l = constant(name);
    if (l.type.elem != ElemType::string) fail(std::string(name) + " must be a string, got " + l.type.str());
    return l.str;
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  }

  const Op& op_;
  const Lookup& lookup_;
};

Shape broadcast(const Checker& c, const Type& x, const Type& y) {
  Shape a = x.tensor ? x.shape : Shape{}, b = y.tensor ? y.shape : Shape{};
  Shape out(std::max(a.size(), b.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1, db = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1)
      c.fail("x " + x.str() + " and y " + y.str() + " do not broadcast (dimension " + std::to_string(da) + " vs " +
             std::to_string(db) + ")");
    out[out.size() - 1 - i] = std::max(da, db);
  }
  return out;
}

Type elementwise(const Checker& c) {
  const Type& x = c.type_of("x");
  const Type& y = c.type_of("y");
  if (x.elem != y.elem) c.fail(std::string("x is ") + elem_name(x.elem) + " but y is " + elem_name(y.elem));
  if (!is_float(x.elem)) c.fail(std::string("needs fp16 or fp32 operands, got ") + elem_name(x.elem));
  if (!x.tensor && !y.tensor) return x;
  return Type::of(x.elem, broadcast(c, x, y));
}

Type matmul(const Checker& c) {
  const Type& x = c.tensor("x");
  const Type& y = c.tensor("y");
  bool tx = c.flag("transpose_x", false), ty = c.flag("transpose_y", false);
  if (x.rank() < 2 || y.rank() < 2) c.fail("x " + x.str() + " and y " + y.str() + " must both have rank >= 2");
  if (x.elem != y.elem) c.fail("x " + x.str() + " and y " + y.str() + " differ in element type");
  int64_t m = x.shape[x.rank() - (tx ? 1 : 2)], kx = x.shape[x.rank() - (tx ? 2 : 1)];
  int64_t ky = y.shape[y.rank() - (ty ? 1 : 2)], n = y.shape[y.rank() - (ty ? 2 : 1)];
  if (kx != ky)
    c.fail("x " + x.str() + (tx ? " (transposed)" : "") + " and y " + y.str() + (ty ? " (transposed)" : "") +
           ": inner dimensions " + std::to_string(kx) + " and " + std::to_string(ky) + " differ");
  Type bx = Type::of(x.elem, Shape(x.shape.begin(), x.shape.end() - 2));
  Type by = Type::of(y.elem, Shape(y.shape.begin(), y.shape.end() - 2));
  Shape out = broadcast(c, bx, by);
  out.push_back(m);
  out.push_back(n);
  return Type::of(x.elem, out);
}

Type conv(const Checker& c) {
  const Type& x = c.tensor("x");
  const Type& w = c.tensor("weight");
  if (x.rank() != 4 || w.rank() != 4) c.fail("x " + x.str() + " and weight " + w.str() + " must be rank 4 [N,C,H,W] and [OC,C/groups,KH,KW]");
  int64_t groups = c.has("groups") ? c.scalar_int("groups") : 1;
  if (groups < 1 || x.shape[1] % groups || w.shape[0] % groups) c.fail("groups " + std::to_string(groups) + " does not divide the channels of x " + x.str() + " and weight " + w.str());
  if (w.shape[1] * groups != x.shape[1])
    c.fail("x " + x.str() + " has " + std::to_string(x.shape[1]) + " channels but weight " + w.str() + " expects " +
           std::to_string(w.shape[1] * groups));
  std::vector<int64_t> strides = c.has("strides") ? c.ints("strides", 2) : std::vector<int64_t>{1, 1};
  std::vector<int64_t> dil = c.has("dilations") ? c.ints("dilations", 2) : std::vector<int64_t>{1, 1};
  std::string pad_type = c.has("pad_type") ? c.text("pad_type") : "valid";
  std::vector<int64_t> pad = c.has("pad") ? c.ints("pad", 4) : std::vector<int64_t>{0, 0, 0, 0};
  if (pad_type != "valid" && pad_type != "custom") c.fail("pad_type '" + pad_type + "' is not supported (valid, custom)");
  if (pad_type == "valid") pad = {0, 0, 0, 0};
  Shape out = {x.shape[0], w.shape[0], 0, 0};
  for (int i = 0; i < 2; ++i) {
    if (strides[i] < 1 || dil[i] < 1) c.fail("strides and dilations must be >= 1");
    int64_t span = dil[i] * (w.shape[2 + i] - 1) + 1;
    int64_t in = x.shape[2 + i] + pad[2 * i] + pad[2 * i + 1];
    if (in < span) c.fail("kernel " + w.str() + " is larger than the padded input " + x.str());
    out[2 + i] = (in - span) / strides[i] + 1;
  }
  if (c.has("bias")) {
    const Type& b = c.tensor("bias");
    if (b.shape != Shape{w.shape[0]}) c.fail("bias " + b.str() + " must be [" + std::to_string(w.shape[0]) + "]");
  }
  return Type::of(x.elem, out);
}

Type reshape(const Checker& c) {
  const Type& x = c.tensor("x");
  std::vector<int64_t> shape = c.ints("shape", 0);
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1 && infer_at < 0) infer_at = int64_t(i);
    else if (shape[i] < 1) c.fail("shape " + shape_str(shape) + " has an invalid dimension");
    else known *= shape[i];
  }
  if (infer_at >= 0 && known > 0 && x.numel() % known == 0) shape[infer_at] = x.numel() / known;
  if (shape_numel(shape) != x.numel())
    c.fail("cannot reshape x " + x.str() + " (" + std::to_string(x.numel()) + " elements) to " + shape_str(shape));
  return Type::of(x.elem, shape);
}

Type transpose(const Checker& c) {
  const Type& x = c.tensor("x");
  std::vector<int64_t> perm = c.ints("perm", 0);
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i)
    if (sorted[i] != int64_t(i) || sorted.size() != x.shape.size())
      c.fail("perm " + shape_str(perm) + " is not a permutation of the axes of x " + x.str());
  Shape out;
  for (int64_t p : perm) out.push_back(x.shape[p]);
  return Type::of(x.elem, out);
}

Type slice_by_size(const Checker& c) {
  const Type& x = c.tensor("x");
  std::vector<int64_t> begin = c.ints("begin", x.shape.size()), size = c.ints("size", x.shape.size());
  Shape out(x.shape.size());
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t s = size[i] == -1 ? x.shape[i] - begin[i] : size[i];
    if (begin[i] < 0 || s < 1 || begin[i] + s > x.shape[i])
      c.fail("begin " + shape_str(begin) + " size " + shape_str(size) + " is outside x " + x.str() + " on axis " + std::to_string(i));
    out[i] = s;
  }
  return Type::of(x.elem, out);
}

Type concat(const Checker& c) {
  const Arg* values = c.op_.arg("values");
  if (values->vars.empty()) c.fail("values is empty");
  if (c.flag("interleave", false)) c.fail("interleave=true is not supported (no ANE program is known to use it)");
  const Type& first = c.lookup_(values->vars[0])->type;
  if (!first.tensor) c.fail("values must be tensors");
  int axis = normalize_axis(c.scalar_int("axis"), first.rank(), "concat axis");
  Shape out = first.shape;
  out[axis] = 0;
  for (const std::string& v : values->vars) {
    const Type& t = c.lookup_(v)->type;
    bool ok = t.tensor && t.elem == first.elem && t.rank() == first.rank();
    for (int i = 0; ok && i < first.rank(); ++i) ok = i == axis || t.shape[i] == first.shape[i];
    if (!ok)
      c.fail("'" + excerpt(v) + "' " + t.str() + " does not match '" + excerpt(values->vars[0]) + "' " + first.str() +
             " off axis " + std::to_string(axis));
    out[axis] += t.shape[axis];
  }
  return Type::of(first.elem, out);
}

Type reduce_sum(const Checker& c) {
  const Type& x = c.tensor("x");
  bool keep = c.flag("keep_dims", false);
  std::vector<bool> reduced(x.rank(), !c.has("axes"));
  if (c.has("axes"))
    for (int64_t a : c.ints("axes", 0)) reduced[normalize_axis(a, x.rank(), "reduce_sum axis")] = true;
  Shape out;
  for (int i = 0; i < x.rank(); ++i) {
    if (!reduced[i]) out.push_back(x.shape[i]);
    else if (keep) out.push_back(1);
  }
  if (out.empty()) return Type::scalar(x.elem);
  return Type::of(x.elem, out);
}

Type quantization_scale_check(const Checker& c, const Type& input, const char* scale_name) {
  const Type& s = c.type_of(scale_name);
  if (!is_float(s.elem)) c.fail(std::string(scale_name) + " must be fp16 or fp32, got " + s.str());
  if (s.tensor && s.rank() != 1) c.fail(std::string(scale_name) + " must be a scalar or a vector along axis, got " + s.str());
  if (s.tensor) {
    if (!c.has("axis")) c.fail("a per-channel scale needs axis");
    int axis = normalize_axis(c.scalar_int("axis"), input.rank(), "axis");
    if (s.shape[0] != input.shape[axis]) c.fail("scale " + s.str() + " does not match input " + input.str() + " on axis " + std::to_string(axis));
  }
  return s;
}

Type constexpr_affine_dequantize(const Checker& c) {
  const Op& op = c.op_;
  for (const char* a : {"quantized_data", "scale", "zero_point", "axis"})
    if (!op.attr(a)) c.fail(std::string("missing attribute '") + a + "'");
  const Literal& q = op.attr("quantized_data")->value;
  if (!q.type.tensor || q.type.elem != ElemType::int8) c.fail("quantized_data must be an int8 tensor, got " + q.type.str());
  const Literal& scale = op.attr("scale")->value;
  if (!is_float(scale.type.elem)) c.fail("scale must be fp16 or fp32, got " + scale.type.str());
  int axis = normalize_axis(op.attr("axis")->value.as_int(), q.type.rank(), "axis");
  for (const char* a : {"scale", "zero_point"}) {
    const Type& t = op.attr(a)->value.type;
    if (t.tensor && (t.rank() != 1 || t.shape[0] != q.type.shape[axis]))
      c.fail(std::string(a) + " " + t.str() + " must be a scalar or match quantized_data " + q.type.str() + " on axis " + std::to_string(axis));
  }
  return Type::of(scale.type.elem, q.type.shape);
}

Type sdpa(const Checker& c) {
  const Type& q = c.tensor("query");
  const Type& k = c.tensor("key");
  const Type& v = c.tensor("value");
  int r = q.rank();
  if (r < 3 || k.rank() != r || v.rank() != r) c.fail("query " + q.str() + ", key " + k.str() + " and value " + v.str() + " need one rank >= 3");
  bool ok = q.shape[r - 1] == k.shape[r - 1] && k.shape[r - 2] == v.shape[r - 2];
  for (int i = 0; ok && i < r - 2; ++i) ok = q.shape[i] == k.shape[i] && k.shape[i] == v.shape[i];
  if (!ok) c.fail("query " + q.str() + ", key " + k.str() + " and value " + v.str() + " do not fit [..,L,E], [..,S,E], [..,S,Ev]");
  Shape out = q.shape;
  out[r - 1] = v.shape[r - 1];
  return Type::of(q.elem, out);
}

}  // namespace

int normalize_axis(int64_t axis, int rank, const std::string& what) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) mil_fail(what + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return int(a);
}

const std::vector<std::string>& known_ops() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& [k, _] : signatures()) v.push_back(k);
    return v;
  }();
  return names;
}

bool is_known_op(const std::string& kind) { return signatures().count(kind) != 0; }

Type infer_type(const Op& op, const Lookup& lookup) {
  Checker c(op, lookup);
  c.check_args();
  const std::string& k = op.kind;
  try {
    if (k == "const") {
      const Attr* val = op.attr("val");
      if (!val) c.fail("missing val");
      return val->value.type;
    }
    if (k == "constexpr_affine_dequantize") return constexpr_affine_dequantize(c);
    if (k == "add" || k == "mul" || k == "sub" || k == "pow") return elementwise(c);
    if (k == "matmul") return matmul(c);
    if (k == "conv") return conv(c);
    if (k == "reshape") return reshape(c);
    if (k == "transpose") return transpose(c);
    if (k == "slice_by_size") return slice_by_size(c);
    if (k == "concat") return concat(c);
    if (k == "reduce_sum") return reduce_sum(c);
    if (k == "scaled_dot_product_attention") return sdpa(c);
    if (k == "softmax" || k == "sigmoid") {
      const Type& x = c.tensor("x");
      if (!is_float(x.elem)) c.fail("x must be fp16 or fp32, got " + x.str());
      if (c.has("axis")) normalize_axis(c.scalar_int("axis"), x.rank(), "softmax axis");
      return x;
    }
    if (k == "cast") {
      const Type& x = c.type_of("x");
      std::string to = c.text("dtype");
      auto e = elem_from_name(to);
      if (!e || !(is_float(*e) || *e == ElemType::int32)) c.fail("cannot cast to '" + to + "' (fp16, fp32, int32)");
      Type t = x;
      t.elem = *e;
      return t;
    }
    if (k == "quantize") {
      const Type& in = c.tensor("input");
      quantization_scale_check(c, in, "scale");
      if (c.text("output_dtype") != "int8") c.fail("output_dtype '" + c.text("output_dtype") + "' is not supported (int8)");
      return Type::of(ElemType::int8, in.shape);
    }
    if (k == "dequantize") {
      const Type& in = c.tensor("input");
      if (in.elem != ElemType::int8) c.fail("input must be int8, got " + in.str());
      return Type::of(quantization_scale_check(c, in, "scale").elem, in.shape);
    }
  } catch (const MilError& e) {
    std::string what = e.what();
    if (what.rfind(c.prefix(), 0) == 0) throw;
    c.fail(what);
  }
  c.fail("no type rule");
}

}  // namespace anetrain::mil
