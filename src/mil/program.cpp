#include "mil/program.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/dtype.h"

namespace anetrain::mil {

const char* elem_name(ElemType t) {
  switch (t) {
    case ElemType::fp16: return "fp16";
    case ElemType::fp32: return "fp32";
    case ElemType::int32: return "int32";
    case ElemType::int8: return "int8";
    case ElemType::boolean: return "bool";
    case ElemType::string: return "string";
    case ElemType::uint64: return "uint64";
  }
  return "?";
}

std::optional<ElemType> elem_from_name(std::string_view s) {
  for (ElemType t : {ElemType::fp16, ElemType::fp32, ElemType::int32, ElemType::int8, ElemType::boolean,
                     ElemType::string, ElemType::uint64})
    if (s == elem_name(t)) return t;
  return std::nullopt;
}

std::string shape_str(const Shape& s, bool spaced) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += spaced ? ", " : ",";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string Type::str(bool spaced_dims) const {
  if (!tensor) return elem_name(elem);
  return std::string("tensor<") + elem_name(elem) + ", " + shape_str(shape, spaced_dims) + ">";
}

namespace {
// The largest cut at or below n that does not split a UTF-8 sequence.
size_t utf8_cut(std::string_view t, size_t n) {
  while (n > 0 && n < t.size() && (static_cast<unsigned char>(t[n]) & 0xC0) == 0x80) --n;
  return n;
}
}  // namespace

void mil_fail(const std::string& msg) {
  // The last guard against echoing input: quotes are excerpts already, but shapes of a huge rank
  // or long names could still add up.
  constexpr size_t kMaxMessage = 2000;
  if (msg.size() <= kMaxMessage) throw MilError(msg);
  const size_t cut = utf8_cut(msg, kMaxMessage);
  throw MilError(msg.substr(0, cut) + "… (" + std::to_string(msg.size() - cut) + " more characters)");
}

std::string excerpt(std::string_view text, size_t max_chars) {
  const size_t end = utf8_cut(text, std::min({text.size(), max_chars, text.find('\n')}));
  std::string out(text.substr(0, end));
  if (end < text.size()) out += "… (" + std::to_string(text.size() - end) + " more characters)";
  return out;
}

namespace {

// Shortest %g text that reads back to the same value at the literal's precision, so the
// printed program says exactly the number the hardware will use.
std::string float_text(ElemType e, double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    double back = std::strtod(buf, nullptr);
    bool same = e == ElemType::fp16 ? f32_to_f16(float(back)) == f32_to_f16(float(v))
              : e == ElemType::fp32 ? float(back) == float(v)
                                    : back == v;
    if (same) return buf;
  }
  return buf;
}

std::string number_text(ElemType e, double v) {
  if (e == ElemType::boolean) return v != 0 ? "true" : "false";
  if (is_float(e)) return float_text(e, v);
  return std::to_string(int64_t(v));
}

Literal make(Literal::Kind kind, Type type, std::string text, std::vector<double> values) {
  Literal l;
  l.kind = kind;
  l.type = std::move(type);
  l.text = std::move(text);
  l.values = std::move(values);
  return l;
}

}  // namespace

Literal Literal::of_bool(bool v) { return make(Kind::scalar, Type::scalar(ElemType::boolean), v ? "true" : "false", {double(v)}); }
Literal Literal::of_int32(int64_t v) { return make(Kind::scalar, Type::scalar(ElemType::int32), std::to_string(v), {double(v)}); }
Literal Literal::of_uint64(uint64_t v) { return make(Kind::scalar, Type::scalar(ElemType::uint64), std::to_string(v), {double(v)}); }

Literal Literal::of_string(const std::string& v) {
  Literal l = make(Kind::scalar, Type::scalar(ElemType::string), "\"" + v + "\"", {});
  l.str = v;
  return l;
}

Literal Literal::of_float(ElemType e, double v) { return of_float(e, v, float_text(e, v)); }
Literal Literal::of_float(ElemType e, double v, std::string text) {
  return make(Kind::scalar, Type::scalar(e), std::move(text), {v});
}

Literal Literal::of_ints(const std::vector<int64_t>& v) {
  std::vector<double> d(v.begin(), v.end());
  return of_tensor(Type::of(ElemType::int32, {int64_t(v.size())}), std::move(d));
}

Literal Literal::of_tensor(Type t, std::vector<double> v) {
  if (int64_t(v.size()) != t.numel())
    mil_fail("tensor literal of type " + t.str() + " given " + std::to_string(v.size()) + " values");
  std::string text = "[";
  for (size_t i = 0; i < v.size(); ++i) text += (i ? "," : "") + number_text(t.elem, v[i]);
  text += "]";
  return make(Kind::tensor, std::move(t), std::move(text), std::move(v));
}

Literal Literal::of_blob(Type t, std::string path, uint64_t offset) {
  Literal l = make(Kind::blobfile, std::move(t), "", {});
  l.blob_path = std::move(path);
  l.blob_offset = offset;
  return l;
}

std::string Literal::str_literal() const {
  switch (kind) {
    case Kind::scalar: return std::string(elem_name(type.elem)) + "(" + text + ")";
    case Kind::tensor: return type.str() + "(" + text + ")";
    case Kind::blobfile:
      return type.str() + "(BLOBFILE(path=string(\"" + blob_path + "\"), offset=uint64(" +
             std::to_string(blob_offset) + ")))";
  }
  return "";
}

int64_t Literal::as_int() const {
  if (kind != Kind::scalar || values.size() != 1) mil_fail("expected a scalar number, got " + excerpt(str_literal()));
  return int64_t(values[0]);
}

std::vector<int64_t> Literal::as_ints() const {
  if (kind == Kind::blobfile) mil_fail("expected an int32 tensor literal, got a BLOBFILE");
  return std::vector<int64_t>(values.begin(), values.end());
}

bool Literal::as_bool() const {
  if (type.elem != ElemType::boolean || kind != Kind::scalar) mil_fail("expected a bool, got " + excerpt(str_literal()));
  return values[0] != 0;
}

const Arg* Op::arg(const std::string& name) const {
  for (const Arg& a : args)
    if (a.name == name) return &a;
  return nullptr;
}

const Attr* Op::attr(const std::string& name) const {
  for (const Attr& a : attrs)
    if (a.name == name) return &a;
  return nullptr;
}

std::string Op::label() const {
  const Attr* n = attr("name");
  return n ? n->value.str : out;
}

ProducerIndex::ProducerIndex(const Program& p) {
  by_name_.reserve(p.ops.size());
  for (const Op& op : p.ops) by_name_.emplace(op.out, &op);  // the first definition, as producer() finds
}

const Op* ProducerIndex::operator()(std::string_view var) const {
  auto it = by_name_.find(var);
  return it == by_name_.end() ? nullptr : it->second;
}

const Op* Program::producer(const std::string& var) const {
  for (const Op& op : ops)
    if (op.out == var) return &op;
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> default_build_info() {
  return {{"coremlc-component-MIL", "3510.2.1"},
          {"coremlc-version", "3505.4.1"},
          {"coremltools-component-milinternal", ""},
          {"coremltools-version", "9.0"}};
}

const Literal* ConstantTable::arg(const Op& op, const char* name) const {
  const Arg* a = op.arg(name);
  if (!a) return nullptr;
  if (a->is_literal) return &a->literal;
  auto it = values_.find(a->vars.at(0));
  return it == values_.end() ? nullptr : it->second;
}

}  // namespace anetrain::mil
