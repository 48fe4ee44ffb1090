// MIL value types: a scalar or a statically shaped tensor of one element type.
// Only what the Neural Engine programs we generate or read need: fp16/fp32 data, int32 shape
// arguments, int8 quantized weights, bool flags, string enums and the uint64 blob offsets.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace anetrain::mil {

enum class ElemType { fp16, fp32, int32, int8, boolean, string, uint64 };

const char* elem_name(ElemType t);                          // "fp16", "bool", ...
std::optional<ElemType> elem_from_name(std::string_view s);
inline bool is_float(ElemType t) { return t == ElemType::fp16 || t == ElemType::fp32; }

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s, bool spaced = false);  // "[1,64,1,32]" or "[1, 64, 1, 32]"
int64_t shape_numel(const Shape& s);

struct Type {
  ElemType elem = ElemType::fp16;
  bool tensor = false;  // false: a scalar
  Shape shape;          // tensors only; rank ≥ 1

  static Type scalar(ElemType e) { return {e, false, {}}; }
  static Type of(ElemType e, Shape s) { return {e, true, std::move(s)}; }
  static Type fp16(Shape s) { return of(ElemType::fp16, std::move(s)); }  // what ANE programs carry
  int64_t numel() const { return tensor ? shape_numel(shape) : 1; }
  int rank() const { return tensor ? int(shape.size()) : 0; }
  // "tensor<fp16, [1,64,1,32]>" or "fp16"; function signatures space the dims.
  std::string str(bool spaced_dims = false) const;
  bool operator==(const Type& o) const = default;
};

// Everything wrong with a program (shapes, types, syntax, limits) is a MilError; the parser
// prefixes the line and column, the builder the op.
class MilError : public Error {
 public:
  explicit MilError(const std::string& what) : Error(what) {}
};
[[noreturn]] void mil_fail(const std::string& msg);

}  // namespace anetrain::mil
