// Reads MIL text back into a Program and checks it as the builder would: every op known, every
// argument defined before use, every declared type equal to the type the op computes.
// Errors read "SOURCE:LINE:COL: message".
#pragma once
#include <string>

#include "mil/program.h"

namespace anetrain::mil {

Program parse_program(const std::string& text, const std::string& source_name = "<mil>");
// Reads and parses a MIL text file; errors name the file.
Program parse_program_file(const std::string& path);

// Type-checks a whole program (the parser calls this; the builder's programs pass by
// construction). `where` prefixes errors with the op's line and column when it has them.
void check_program(const Program& p, const std::string& source_name = "<mil>");

}  // namespace anetrain::mil
