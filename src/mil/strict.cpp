#include "mil/strict.h"

#include <cmath>
#include <map>

#include "mil/blob.h"
#include "mil/infer.h"
#include "mil/parser.h"
#include "mil/printer.h"

namespace anetrain::mil {
namespace {

// Op names a variable must not take: the ops of the MIL we write (infer.h). Not every MIL op
// name — the seed's ffnFused names a variable `silu` and compiled — but those of ops a program of
// ours may call, which is what the builder's unnamed results were (`reshape = reshape(...)`).
bool is_op_name(const std::string& name) { return is_known_op(name); }

bool power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

std::string dims(const Type& t) { return t.tensor ? shape_str(t.shape) : "scalar"; }

int line_of(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  if (at == std::string::npos) return 0;
  int line = 1;
  for (size_t i = 0; i < at; ++i) line += text[i] == '\n';
  return line;
}

class StrictChecker {
 public:
  StrictChecker(const Program& p, const std::string& text, const ProvenSet& proven)
      : p_(p), proven_(proven), signature_line_(line_of(text, "func ")) {
    for (const auto& [name, type] : p.inputs) types_[name] = type;
  }

  std::vector<StrictFinding> run() {
    const std::vector<Construct> constructs = program_constructs(p_);
    for (const auto& [name, type] : p_.inputs) {
      check_value(signature_line_, name, type, false, "");
      check_row(signature_line_, name, type, "input", "");
    }
    for (size_t i = 0; i < p_.ops.size(); ++i) check_op(p_.ops[i], constructs[i]);
    for (const std::string& out : p_.outputs) {
      const Op* op = p_.producer(out);
      if (op) check_row(op->line, out, op->type, "output", nearest_of(*op));
    }
    return std::move(findings_);
  }

 private:
  void add(int line, const std::string& var, const char* rule, std::string message, std::string nearest) {
    findings_.push_back({line, var, rule, std::move(message), std::move(nearest)});
  }

  std::string nearest_of(const Op& op) const {
    auto it = nearest_.find(op.out);
    return it == nearest_.end() ? "" : it->second;
  }

  void check_op(const Op& op, const Construct& c) {
    std::string near = proven_.nearest(c);
    if (near.empty()) near = "no seed program uses " + op.kind;
    nearest_[op.out] = near;
    const int line = op.line;
    if (!proven_.contains(c)) add(line, op.out, strict_rule::kConstruct, "`" + c.key() + "` occurs in no seed program", near);
    const bool constant = op.kind == "const" || op.kind == "constexpr_affine_dequantize";
    check_value(line, op.out, op.type, constant, near);
    if (is_op_name(op.out)) add(line, op.out, strict_rule::kOpNamedVariable, "the variable is named after the op '" + op.out + "'", near);
    else if (is_op_name(op.label()))
      add(line, op.out, strict_rule::kOpNamedVariable, "the statement's name=string(\"" + op.label() + "\") is an op's name", near);
    check_literals(op, near);
    if (op.kind == "softmax") {
      const Type& x = type_of(op.arg("x"));
      const Literal* a = constant_arg(op, "axis");
      const int axis = normalize_axis(a ? a->as_int() : -1, x.rank(), "softmax axis");
      const int64_t n = x.shape[size_t(axis)];
      if (!power_of_two(n))
        add(line, op.out, strict_rule::kSoftmaxLength, "softmax over axis " + std::to_string(axis) + " of " + dims(x) +
            ": length " + std::to_string(n) + " is not a power of two (the compiler answers InvalidMILProgram)", near);
    } else if (op.kind == "matmul") {
      const Type& x = type_of(op.arg("x"));
      const Literal* tx = constant_arg(op, "transpose_x");
      const int64_t inner = x.shape[size_t(x.rank() - ((tx && tx->as_bool()) ? 2 : 1))];
      if (inner % 32)
        add(line, op.out, strict_rule::kMatmulInner, "matmul of x " + dims(x) + " and y " + dims(type_of(op.arg("y"))) +
            " contracts over " + std::to_string(inner) + ", not a multiple of 32 (the hardware gives silent zeros)", near);
    } else if (op.kind == "concat") {
      const size_t n = op.arg("values")->vars.size();
      if (int(n) > proven_.max_concat_arity)
        add(line, op.out, strict_rule::kConcatArity, "concat of " + std::to_string(n) + " values; no seed concat joins more than " +
            std::to_string(proven_.max_concat_arity), near);
    }
    types_[op.out] = op.type;
    if (op.kind == "const") constants_.add(op.out, &op.attr("val")->value);
  }

  // N = 1 for activations (a conv weight's dim 0 is its output channels), and the extents.
  void check_value(int line, const std::string& var, const Type& t, bool constant, const std::string& near) {
    if (!t.tensor) return;
    std::string over;
    for (int i = 0; i < t.rank(); ++i) {
      const bool spatial = t.rank() == 4 && i >= 2;
      const int64_t limit = spatial ? kStrictMaxSpatial : kStrictMaxChannels;
      if (t.shape[size_t(i)] > limit)
        over += (over.empty() ? "" : ", ") + std::string("dim ") + std::to_string(i) + " = " + std::to_string(t.shape[size_t(i)]) +
                " > " + std::to_string(limit);
    }
    if (!over.empty()) add(line, var, strict_rule::kExtent, dims(t) + ": " + over + " (H, W <= 16384; C <= 65536)", near);
    if (!constant && t.rank() == 4 && t.shape[0] != 1)
      add(line, var, strict_rule::kBatch, dims(t) + " has N = " + std::to_string(t.shape[0]) + " (dim 0 of a rank-4 value must be 1)", near);
  }

  void check_row(int line, const std::string& var, const Type& t, const char* what, const std::string& near) {
    if (!t.tensor) return;
    const int64_t bytes = t.shape.back() * int64_t(elem_bytes(t.elem));
    if (bytes % kStrictRowAlignBytes)
      add(line, var, strict_rule::kIoRowBytes, std::string(what) + " " + t.str() + ": a row is " + std::to_string(bytes) +
          " bytes, not a multiple of " + std::to_string(kStrictRowAlignBytes), near);
  }

  // Literals as the text spells them: the compiler's MIL reader is not known to take 1e-06, and a
  // subnormal may be flushed to zero by a datapath that ane-sim keeps it in.
  void check_literals(const Op& op, const std::string& near) {
    auto check = [&](const Literal& l, const std::string& where) {
      if (!is_float(l.type.elem) || l.kind == Literal::Kind::blobfile) return;
      if (l.text.find_first_of("eE") != std::string::npos)
        add(op.line, op.out, strict_rule::kFloatLiteral, where + " " + l.str_literal() + " is in exponent notation", near);
      const double min_normal = l.type.elem == ElemType::fp16 ? std::ldexp(1.0, -14) : std::ldexp(1.0, -126);
      for (double v : l.values)
        if (v != 0 && std::fabs(v) < min_normal) {
          add(op.line, op.out, strict_rule::kFloatLiteral, where + " " + l.str_literal() + " holds a subnormal " + elem_name(l.type.elem), near);
          break;
        }
    };
    for (const Attr& a : op.attrs) check(a.value, a.name);
    for (const Arg& a : op.args)
      if (a.is_literal) check(a.literal, a.name);
  }

  const Type& type_of(const Arg* a) const { return a->is_literal ? a->literal.type : types_.at(a->vars.at(0)); }
  const Literal* constant_arg(const Op& op, const char* name) const { return constants_.arg(op, name); }

  const Program& p_;
  const ProvenSet& proven_;
  int signature_line_;
  std::map<std::string, Type> types_;
  ConstantTable constants_;
  std::map<std::string, std::string> nearest_;
  std::vector<StrictFinding> findings_;
};

}  // namespace

std::vector<StrictFinding> check_strict(const Program& p, const std::string& text, const ProvenSet& proven) {
  bool located = true;
  for (const Op& op : p.ops) located = located && op.line > 0;
  if (located) return StrictChecker(p, text, proven).run();
  // A built program: check the same program as read back from its text, whose ops know their lines.
  const Program parsed = parse_program(text, "<strict>");
  if (parsed.ops.size() != p.ops.size() || parsed.outputs != p.outputs)
    mil_fail("check_strict: the text given is not the program's (" + std::to_string(parsed.ops.size()) + " statements, the program has " +
             std::to_string(p.ops.size()) + ")");
  return StrictChecker(parsed, text, proven).run();
}

std::vector<StrictFinding> check_strict(const Program& p) { return check_strict(p, print_program(p)); }

std::string format_finding(const StrictFinding& f, const std::string& source) {
  return source + ":" + std::to_string(f.line) + ": " + f.variable + ": [" + f.rule + "] " + f.message +
         (f.nearest.empty() ? "" : "; nearest seed: " + f.nearest);
}

}  // namespace anetrain::mil
