// Each op's parameters and result type. The builder types what it creates with this, the
// parser checks every declared type against it, the simulator trusts a program it passed.
#pragma once
#include <functional>
#include <string>

#include "mil/program.h"

namespace anetrain::mil {

struct ValueInfo {
  Type type;
  const Literal* constant = nullptr;  // set for values defined by const()
};
using Lookup = std::function<const ValueInfo*(const std::string& var)>;

// The result type of `op` (its own `type` field is ignored). Throws MilError naming the op, its
// label and the offending shapes.
Type infer_type(const Op& op, const Lookup& lookup);

bool is_known_op(const std::string& kind);
const std::vector<std::string>& known_ops();

// Normalises a possibly negative axis against a rank; throws when out of range.
int normalize_axis(int64_t axis, int rank, const std::string& what);

}  // namespace anetrain::mil
