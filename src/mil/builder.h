// A typed MIL builder. Every value has an element type and a static shape; every op is typed
// when it is added, so a wrong shape fails here — naming the op and both shapes — and never on
// a Mac at compile time. Arguments are bound to named consts as the ANE compiler was fed by the
// seed; equal consts are shared.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "mil/infer.h"
#include "mil/program.h"

namespace anetrain::mil {

struct Var {
  std::string name;
  Type type;
  const Shape& shape() const { return type.shape; }
};

class Builder {
 public:
  Builder();

  Var input(const std::string& name, Type type);

  // Constants.
  Var scalar(double v, ElemType e = ElemType::fp16, const std::string& name = "");
  Var flag(bool v);
  Var ints(const std::vector<int64_t>& v, const std::string& name = "");
  Var text(const std::string& s, const std::string& name = "");
  Var tensor(const std::string& name, Type type, std::vector<double> values);
  // A weight stored in a blob file: path "@model_path/weights/NAME.bin", offset of its chunk.
  Var blob(const std::string& name, Type type, const std::string& path, uint64_t offset);
  Var affine_dequantize(const std::string& name, Type int8_type, const std::string& path, uint64_t offset,
                        double scale, int zero_point = 0, int axis = 0);

  // Ops; `name` names the result (and labels the op). Unnamed results get the op's name.
  Var matmul(const Var& x, const Var& y, bool transpose_x = false, bool transpose_y = false, const std::string& name = "");
  Var conv(const Var& x, const Var& weight, int groups = 1, const std::string& name = "");
  Var add(const Var& x, const Var& y, const std::string& name = "");
  Var sub(const Var& x, const Var& y, const std::string& name = "");
  Var mul(const Var& x, const Var& y, const std::string& name = "");
  Var pow(const Var& x, const Var& y, const std::string& name = "");
  Var add(const Var& x, double y, const std::string& name = "");
  Var mul(const Var& x, double y, const std::string& name = "");
  Var pow(const Var& x, double y, const std::string& name = "");
  Var reshape(const Var& x, const Shape& shape, const std::string& name = "");
  Var transpose(const Var& x, const std::vector<int64_t>& perm, const std::string& name = "");
  Var swap_last_two(const Var& x, const std::string& name = "");  // transpose [.., a, b] → [.., b, a]
  Var slice(const Var& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& size, const std::string& name = "");
  Var concat(const std::vector<Var>& values, int axis, const std::string& name = "");
  Var reduce_sum(const Var& x, const std::vector<int64_t>& axes, bool keep_dims = true, const std::string& name = "");
  Var softmax(const Var& x, int axis = -1, const std::string& name = "");
  Var sigmoid(const Var& x, const std::string& name = "");
  Var cast(const Var& x, ElemType to, const std::string& name = "");
  Var quantize(const Var& x, double scale, const std::string& name = "");
  Var dequantize(const Var& q, double scale, const std::string& name = "");
  // The hardware ignores attn_mask (the simulator warns and ignores it too); see sim/limits.h.
  Var sdpa(const Var& q, const Var& k, const Var& v, const std::string& name = "", const Var* attn_mask = nullptr);

  // Closes the function; the program is complete and type-checked.
  Program finish(const std::vector<Var>& outputs);

 private:
  Var add_op(const std::string& kind, std::vector<std::pair<std::string, Var>> args, const std::string& name,
             const std::vector<Var>& tuple = {});
  Var add_const(const Literal& value, const std::string& hint);
  std::string fresh(const std::string& hint);
  Var record(const Op& op);

  Program program_;
  std::map<std::string, Var> values_;
  std::map<std::string, Var> shared_consts_;  // literal text → const
  std::map<std::string, Literal> const_values_;  // node-stable: infos_ points into it
  std::map<std::string, ValueInfo> infos_;
  int next_const_ = 0;
  bool finished_ = false;
};

}  // namespace anetrain::mil
