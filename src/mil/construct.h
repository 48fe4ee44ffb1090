// A statement's "construct": what the ANE compiler sees of it once the dimensions are left out —
// the op, the rank of each data argument, the parameters that change the op's meaning (reduction,
// softmax and concat axes, the transpose perm, matmul's transpose flags, conv's groups and kernel)
// and, for elementwise ops, which output axes each operand is broadcast along. Two statements with
// one construct differ only in sizes, so a construct the seed's programs ran on the hardware is
// one the compiler is known to accept; the strict checker (strict.h) holds our programs to that.
#pragma once
#include <string>
#include <vector>

#include "mil/program.h"

namespace anetrain::mil {

struct Construct {
  std::string op;
  // Each argument, parameter and the result, as text: "x:r4", "y:r4 broadcast@1", "y:scalar",
  // "transpose_y=true", "-> fp16 r4". None contains ", ", so the key can be split back.
  std::vector<std::string> parts;

  // "matmul(x:r4, y:r4, transpose_x=false, transpose_y=true) -> fp16 r4"
  std::string key() const;
  static Construct from_key(const std::string& key);
  // How many parts two constructs of the same op share: the measure of "nearest".
  int shared_parts(const Construct& other) const;
};

// One construct per op of a type-checked program, in program order.
std::vector<Construct> program_constructs(const Program& p);

}  // namespace anetrain::mil
