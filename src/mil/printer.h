// MIL text in the exact form the ANE compiler was fed by the seed: the program(1.3) header with
// its buildInfo, one statement per line, `} -> (out);`.
#pragma once
#include <string>

#include "mil/program.h"

namespace anetrain::mil {

std::string print_program(const Program& p);
std::string print_op(const Op& op);  // one statement, without indentation or newline

}  // namespace anetrain::mil
