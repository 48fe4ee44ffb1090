// A MIL program as a graph of named values: the one representation that the builder produces,
// the parser reads back, the printer writes and the simulator runs.
// Text is kept where the seed's own generators chose a spelling (fp16(0.250000) vs fp16(0.25)),
// so that parse → print reproduces any program byte for byte.
#pragma once
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mil/types.h"

namespace anetrain::mil {

// A literal value: fp16(0.5), bool(true), string("valid"), uint64(64),
// tensor<int32, [4]>([0,1,3,2]) or tensor<fp16, [..]>(BLOBFILE(path=..., offset=uint64(64))).
struct Literal {
  enum class Kind { scalar, tensor, blobfile };
  Kind kind = Kind::scalar;
  Type type;
  std::string text;            // scalar/tensor: the text between the outer parentheses
  std::vector<double> values;  // numbers (bool as 0/1); empty for string and blobfile
  std::string str;             // string scalars: the unquoted value
  std::string blob_path;       // blobfile: "@model_path/weights/x.bin"
  uint64_t blob_offset = 0;    // blobfile: offset of the chunk header in that file

  static Literal of_bool(bool v);
  static Literal of_int32(int64_t v);
  static Literal of_string(const std::string& v);
  static Literal of_uint64(uint64_t v);
  // fp16/fp32 scalar; the text is the shortest decimal that reads back to the same fp16.
  static Literal of_float(ElemType e, double v);
  static Literal of_float(ElemType e, double v, std::string text);
  static Literal of_ints(const std::vector<int64_t>& v);  // tensor<int32, [n]>
  static Literal of_tensor(Type t, std::vector<double> v);
  static Literal of_blob(Type t, std::string path, uint64_t offset);

  std::string str_literal() const;  // the whole literal as MIL text
  int64_t as_int() const;           // scalar int32/uint64/bool
  std::vector<int64_t> as_ints() const;
  bool as_bool() const;
};

// An argument of an op call: `x=h1`, `values=(a,b)` or (rarely, in probes) `transpose_y=true`.
struct Arg {
  std::string name;
  std::vector<std::string> vars;  // one name, or the members of a tuple
  bool tuple = false;
  bool is_literal = false;
  Literal literal;
};

// A bracketed attribute: `name=string("mm1")`, a const's `val=...`, constexpr op parameters.
struct Attr {
  std::string name;
  Literal value;
};

struct Op {
  std::string kind;  // "matmul", "const", ...
  std::string out;   // the variable it defines
  Type type;         // its declared result type
  std::vector<Arg> args;
  std::vector<Attr> attrs;
  int line = 0, col = 0;  // where the parser found it (0 when built)

  const Arg* arg(const std::string& name) const;
  const Attr* attr(const std::string& name) const;
  std::string label() const;  // the name=string("...") attribute, or the variable name
};

struct Program {
  std::string version = "1.3";
  std::vector<std::pair<std::string, std::string>> build_info;
  std::string function = "main";
  std::string opset = "ios18";
  std::vector<std::pair<std::string, Type>> inputs;
  std::vector<Op> ops;
  std::vector<std::string> outputs;

  const Op* producer(const std::string& var) const;  // nullptr for inputs and unknown names
};

// Which op defines each variable: one pass over the ops, then constant-time lookups. A pass that
// calls Program::producer for each op is quadratic (it scans the ops); one over this is linear.
// Keys view the program's own strings: the program must outlive the index, unchanged.
class ProducerIndex {
 public:
  explicit ProducerIndex(const Program& p);
  const Op* operator()(std::string_view var) const;  // nullptr for inputs and unknown names

 private:
  std::unordered_map<std::string_view, const Op*> by_name_;
};

// Input text quoted in a message: at most `max_chars`, never past the first line break, with
// "… (N more characters)" when cut — so a 400 KB line is never echoed back whole.
std::string excerpt(std::string_view text, size_t max_chars = 200);

// The values of a program's `const` ops by name, so that an argument given as a name can be read
// as the literal it stands for (checkers read axes, permutations and flags this way).
class ConstantTable {
 public:
  void add(const std::string& name, const Literal* value) { values_[name] = value; }
  // Op's argument `name` as a literal — written inline or naming a const — or nullptr (absent, or
  // not a constant).
  const Literal* arg(const Op& op, const char* name) const;

 private:
  std::unordered_map<std::string, const Literal*> values_;
};

// The buildInfo every seed generator writes (it names the compiler that accepted them).
std::vector<std::pair<std::string, std::string>> default_build_info();

}  // namespace anetrain::mil
