// `mil check --strict`: a program passes only if every statement is a construct the seed's
// programs ran on the hardware (proven_set.h) and stays inside the limits the community found
// by failing on it (docs/ane-sim.md, "Strict checking"). The simulator accepts far more than the
// Neural Engine compiler does, and some of what the compiler accepts it then computes wrongly
// (a matmul contracting over a non-multiple of 32 gives silent zeros); strict mode rejects both
// before a Mac ever sees the program.
#pragma once
#include <string>
#include <vector>

#include "mil/program.h"
#include "mil/proven_set.h"

namespace anetrain::mil {

// Rule ids, as findings and the docs name them.
namespace strict_rule {
inline constexpr const char* kConstruct = "construct";            // not a construct of the seed's programs
inline constexpr const char* kBatch = "batch-dim";                // N (dim 0 of a rank-4 value) is not 1
inline constexpr const char* kExtent = "extent";                  // H or W > 16384, C (or any dim) > 65536
inline constexpr const char* kIoRowBytes = "io-row-bytes";        // I/O last dim × element bytes not a multiple of 64
inline constexpr const char* kSoftmaxLength = "softmax-length";   // softmax over a length that is not a power of two
inline constexpr const char* kMatmulInner = "matmul-inner";       // contracted dimension not a multiple of 32
inline constexpr const char* kFloatLiteral = "float-literal";     // exponent notation or a subnormal
inline constexpr const char* kOpNamedVariable = "op-named-variable";  // `reshape = reshape(...)`
inline constexpr const char* kConcatArity = "concat-arity";       // more values than any seed concat joins
}  // namespace strict_rule

inline constexpr int64_t kStrictMaxSpatial = 16384;  // H and W of a rank-4 value
inline constexpr int64_t kStrictMaxChannels = 65536;  // C, and every dim of other ranks
inline constexpr int kStrictRowAlignBytes = 64;

struct StrictFinding {
  int line = 0;          // the statement's line in the program text (the signature's for an input)
  std::string variable;  // the value the statement defines (or the input's name)
  std::string rule;      // one of strict_rule
  std::string message;   // what is wrong, with the numbers
  std::string nearest;   // the seed statement closest to it (ProvenSet::nearest), or why there is none
};

// Every strict finding of a type-checked program, in statement order. `text` is the program's MIL
// text: its lines are where findings point when `p` was built rather than parsed (ops without
// line numbers). Pass print_program(p) for a built program.
std::vector<StrictFinding> check_strict(const Program& p, const std::string& text,
                                        const ProvenSet& proven = ProvenSet::builtin());
// The same for a built program, located in its printed text.
std::vector<StrictFinding> check_strict(const Program& p);

// "file:LINE: variable: [rule] message (nearest seed: ...)"
std::string format_finding(const StrictFinding& f, const std::string& source);

}  // namespace anetrain::mil
