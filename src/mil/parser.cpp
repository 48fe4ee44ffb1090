#include "mil/parser.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>

#include "mil/infer.h"
#include "core/mapped_file.h"

namespace anetrain::mil {
namespace {

class Parser {
 public:
  Parser(const std::string& text, const std::string& source) : s_(text), source_(source) {}

  Program program() {
    Program p;
    expect_word("program");
    expect('(');
    p.version = raw_until(')');
    expect(')');
    skip_space();
    if (peek() == '[') p.build_info = build_info();
    expect('{');
    expect_word("func");
    p.function = identifier("function name");
    expect('<');
    p.opset = identifier("opset");
    expect('>');
    expect('(');
    if (!try_consume(')')) {
      do {
        Type t = type();
        p.inputs.emplace_back(identifier("input name"), t);
      } while (try_consume(','));
      expect(')');
    }
    expect('{');
    while (!try_consume('}')) p.ops.push_back(statement());
    expect('-');
    expect('>');
    expect('(');
    do p.outputs.push_back(identifier("output name"));
    while (try_consume(','));
    expect(')');
    expect(';');
    expect('}');
    skip_space();
    if (pos_ < s_.size()) fail("unexpected text after the program");
    return p;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const { fail_at(pos_, msg); }
  [[noreturn]] void fail_at(size_t pos, const std::string& msg) const {
    const auto [line, col] = line_col(pos);
    mil_fail(source_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + msg);
  }
  // Counted on from the last position asked for: statements ask in order, so the text is scanned
  // once. Counting from the top for every op made `mil check` quadratic (100k ops: over a minute).
  std::pair<int, int> line_col(size_t pos) const {
    if (pos < lc_pos_) lc_pos_ = 0, lc_line_ = 1, lc_col_ = 1;
    for (; lc_pos_ < pos && lc_pos_ < s_.size(); ++lc_pos_) {
      if (s_[lc_pos_] == '\n') lc_line_++, lc_col_ = 1;
      else lc_col_++;
    }
    return {lc_line_, lc_col_};
  }

  void skip_space() {
    while (pos_ < s_.size()) {
      if (std::isspace(static_cast<unsigned char>(s_[pos_]))) {
        ++pos_;
      } else if (s_.compare(pos_, 2, "//") == 0) {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }
  char peek() {
    skip_space();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  std::string found() {
    skip_space();
    if (pos_ >= s_.size()) return "end of text";
    size_t n = 1;
    if (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')
      while (pos_ + n < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_ + n])) || s_[pos_ + n] == '_')) ++n;
    return "'" + excerpt(std::string_view(s_).substr(pos_, n)) + "'";
  }
  bool try_consume(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!try_consume(c)) fail(std::string("expected '") + c + "' but found " + found());
  }
  std::string identifier(const char* what) {
    skip_space();
    size_t start = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) ++pos_;
    if (start == pos_ || std::isdigit(static_cast<unsigned char>(s_[start]))) {
      pos_ = start;
      fail(std::string("expected ") + what + " but found " + found());
    }
    return s_.substr(start, pos_ - start);
  }
  void expect_word(const char* w) {
    size_t at = (skip_space(), pos_);
    std::string got = identifier(w);
    if (got != w) fail_at(at, std::string("expected '") + w + "' but found '" + excerpt(got) + "'");
  }
  // Everything up to the matching close, verbatim: literal spellings survive a round trip.
  std::string raw_until(char close) {
    skip_space();
    size_t start = pos_;
    int depth = 0;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '"') {
        quoted();
        continue;
      }
      if (c == '(' || c == '[') depth++;
      if ((c == ')' || c == ']') && depth-- == 0) break;
      if (c == '\n') break;
      ++pos_;
    }
    if (pos_ >= s_.size() || s_[pos_] != close) fail(std::string("expected '") + close + "' to close the literal");
    size_t end = pos_;
    while (end > start && std::isspace(static_cast<unsigned char>(s_[end - 1]))) --end;
    return s_.substr(start, end - start);
  }
  std::string quoted() {
    if (peek() != '"') fail("expected a string but found " + found());
    size_t start = ++pos_;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\n') {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      out += s_[pos_++];
    }
    if (pos_ >= s_.size() || s_[pos_] != '"') fail_at(start - 1, "unterminated string");
    ++pos_;
    return out;
  }
  int64_t integer() {
    skip_space();
    size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    if (pos_ == start || s_[pos_ - 1] == '-') fail("expected an integer but found " + found());
    if (pos_ - start > 18) fail_at(start, "integer too large");
    return std::strtoll(s_.c_str() + start, nullptr, 10);
  }

  std::vector<std::pair<std::string, std::string>> build_info() {
    expect('[');
    expect_word("buildInfo");
    expect('=');
    expect_word("dict");
    expect('<');
    expect_word("string");
    expect(',');
    expect_word("string");
    expect('>');
    expect('(');
    expect('{');
    std::vector<std::pair<std::string, std::string>> kv;
    if (!try_consume('}')) {
      do {
        expect('{');
        std::string k = quoted();
        expect(',');
        kv.emplace_back(k, quoted());
        expect('}');
      } while (try_consume(','));
      expect('}');
    }
    expect(')');
    expect(']');
    return kv;
  }

  ElemType elem(const std::string& name, size_t at) {
    auto e = elem_from_name(name);
    if (!e) fail_at(at, "unknown element type '" + excerpt(name) + "' (fp16, fp32, int32, int8, bool, string, uint64)");
    return *e;
  }

  Type type() {
    size_t at = (skip_space(), pos_);
    std::string word = identifier("a type");
    if (word != "tensor") return Type::scalar(elem(word, at));
    expect('<');
    at = (skip_space(), pos_);
    ElemType e = elem(identifier("an element type"), at);
    expect(',');
    expect('[');
    Shape shape;
    if (!try_consume(']')) {
      do {
        size_t dim_at = (skip_space(), pos_);
        int64_t d = integer();
        if (d < 1) fail_at(dim_at, "tensor dimensions must be positive, got " + std::to_string(d));
        shape.push_back(d);
      } while (try_consume(','));
      expect(']');
    }
    if (shape.empty()) fail("a tensor needs at least one dimension");
    // Bounded so that no element count or byte size computed later can overflow.
    double numel = 1;
    for (int64_t d : shape) numel *= double(d);
    if (numel > double(int64_t(1) << 40)) fail_at(at, "tensor of " + shape_str(shape) + " is too large");
    expect('>');
    return Type::of(e, shape);
  }

  std::vector<double> numbers(const std::string& text, ElemType e, size_t at) {
    std::vector<double> v;
    if (e == ElemType::string) return v;
    const char* p = text.c_str();
    if (*p == '[') ++p;
    while (*p && *p != ']') {
      while (*p == ' ' || *p == ',') ++p;
      if (*p == ']' || !*p) break;
      char* end = nullptr;
      double d;
      if (std::strncmp(p, "true", 4) == 0) d = 1, end = const_cast<char*>(p + 4);
      else if (std::strncmp(p, "false", 5) == 0) d = 0, end = const_cast<char*>(p + 5);
      else d = std::strtod(p, &end);
      if (end == p)
        fail_at(at + size_t(p - text.c_str()), "cannot read a number at '" + excerpt(std::string_view(p), 40) + "' in '" +
                                                  excerpt(text) + "'");
      v.push_back(d);
      p = end;
    }
    return v;
  }

  Literal literal() {
    size_t at = (skip_space(), pos_);
    Type t = type();
    expect('(');
    Literal l;
    l.type = t;
    skip_space();
    if (t.tensor && s_.compare(pos_, 8, "BLOBFILE") == 0) {
      l.kind = Literal::Kind::blobfile;
      expect_word("BLOBFILE");
      expect('(');
      expect_word("path");
      expect('=');
      expect_word("string");
      expect('(');
      l.blob_path = quoted();
      expect(')');
      expect(',');
      expect_word("offset");
      expect('=');
      expect_word("uint64");
      expect('(');
      l.blob_offset = uint64_t(integer());
      expect(')');
      expect(')');
    } else {
      l.kind = t.tensor ? Literal::Kind::tensor : Literal::Kind::scalar;
      size_t text_at = pos_;
      l.text = raw_until(')');
      if (t.elem == ElemType::string) {
        size_t save = pos_;
        pos_ = text_at;
        l.str = quoted();
        pos_ = save;
      }
      l.values = numbers(l.text, t.elem, text_at);
      for (double v : l.values) {
        bool integral = t.elem == ElemType::int32 || t.elem == ElemType::int8 || t.elem == ElemType::uint64;
        double lo = t.elem == ElemType::int8 ? -128 : t.elem == ElemType::uint64 ? 0 : -2147483648.0;
        double hi = t.elem == ElemType::int8 ? 127 : t.elem == ElemType::uint64 ? 9.2e18 : 2147483647.0;
        if (integral && !(v >= lo && v <= hi && v == std::trunc(v)))
          fail_at(text_at, std::string("'") + excerpt(l.text) + "' is not a valid " + elem_name(t.elem) + " literal");
        if (t.elem == ElemType::boolean && v != 0 && v != 1) fail_at(text_at, "a bool literal is true or false");
      }
      if (t.elem != ElemType::string && int64_t(l.values.size()) != t.numel())
        fail_at(at, "literal of type " + t.str() + " holds " + std::to_string(l.values.size()) + " values");
    }
    expect(')');
    return l;
  }

  bool at_literal() {
    skip_space();
    size_t save = pos_;
    std::string word = identifier("a value");
    bool lit = word == "tensor" || (elem_from_name(word) && peek() == '(');
    pos_ = save;
    return lit;
  }

  Op statement() {
    skip_space();
    size_t at = pos_;
    Op op;
    op.type = type();
    op.out = identifier("a variable name");
    expect('=');
    op.kind = identifier("an op name");
    expect('(');
    if (!try_consume(')')) {
      do {
        Arg a;
        a.name = identifier("a parameter name");
        expect('=');
        if (try_consume('(')) {
          a.tuple = true;
          do a.vars.push_back(identifier("a variable in the tuple"));
          while (try_consume(','));
          expect(')');
        } else if (at_literal()) {
          a.is_literal = true;
          a.literal = literal();
        } else {
          a.vars.push_back(identifier("a variable"));
        }
        op.args.push_back(std::move(a));
      } while (try_consume(','));
      expect(')');
    }
    if (try_consume('[')) {
      if (!try_consume(']')) {
        do {
          Attr attr;
          attr.name = identifier("an attribute name");
          expect('=');
          attr.value = literal();
          op.attrs.push_back(std::move(attr));
        } while (try_consume(','));
        expect(']');
      }
    }
    expect(';');
    std::tie(op.line, op.col) = line_col(at);
    return op;
  }

  const std::string& s_;
  std::string source_;
  size_t pos_ = 0;
  mutable size_t lc_pos_ = 0;  // line_col's cursor: the line and column of position lc_pos_
  mutable int lc_line_ = 1, lc_col_ = 1;
};

}  // namespace

void check_program(const Program& p, const std::string& source_name) {
  std::map<std::string, ValueInfo> env;
  auto where = [&](const Op& op) {
    return op.line ? source_name + ":" + std::to_string(op.line) + ":" + std::to_string(op.col) + ": " : source_name + ": ";
  };
  for (const auto& [name, type] : p.inputs) {
    if (!type.tensor) mil_fail(source_name + ": input '" + excerpt(name) + "' must be a tensor");
    if (!env.emplace(name, ValueInfo{type, nullptr}).second) mil_fail(source_name + ": input '" + excerpt(name) + "' declared twice");
  }
  Lookup lookup = [&](const std::string& v) -> const ValueInfo* {
    auto it = env.find(v);
    return it == env.end() ? nullptr : &it->second;
  };
  for (const Op& op : p.ops) {
    Type inferred;
    try {
      inferred = infer_type(op, lookup);
    } catch (const MilError& e) {
      mil_fail(where(op) + e.what());
    }
    if (inferred != op.type)
      mil_fail(where(op) + excerpt(op.kind) + " '" + excerpt(op.label()) + "': declared " + op.type.str() + " but it computes " +
               inferred.str());
    const Literal* constant = op.kind == "const" ? &op.attr("val")->value : nullptr;
    if (!env.emplace(op.out, ValueInfo{op.type, constant}).second)
      mil_fail(where(op) + "'" + excerpt(op.out) + "' is defined twice");
  }
  if (p.outputs.empty()) mil_fail(source_name + ": the function returns nothing");
  for (const std::string& o : p.outputs)
    if (!env.count(o)) mil_fail(source_name + ": output '" + excerpt(o) + "' is never defined");
}

Program parse_program_file(const std::string& path) {
  MappedFile f(path);
  return parse_program(std::string(reinterpret_cast<const char*>(f.data()), f.size()), path);
}

Program parse_program(const std::string& text, const std::string& source_name) {
  Parser parser(text, source_name);
  Program p = parser.program();
  check_program(p, source_name);
  return p;
}

}  // namespace anetrain::mil
