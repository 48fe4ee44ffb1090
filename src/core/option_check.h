// The ranges of user-given numbers, in one place: every command's flags (through CLI11 checks
// built on these), the C API's options and run.json read back on --resume reach the same rules,
// so `--threads 100000` or `--lr nan` is refused with the option's name before anything runs.
#pragma once
#include <cstdint>
#include <limits>
#include <string>

namespace anetrain {

// An interval of allowed values; NaN and ±inf are outside every interval.
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  bool integer = false;  // whole numbers only

  static Range at_least(double lo) { return {lo, std::numeric_limits<double>::infinity(), false, true, false}; }
  static Range above(double lo) { return {lo, std::numeric_limits<double>::infinity(), true, true, false}; }
  static Range between(double lo, double hi) { return {lo, hi, false, false, false}; }
  Range whole() const {
    Range r = *this;
    r.integer = true;
    return r;
  }
  std::string describe() const;  // "in (0, 1]", "≥ 1", "a whole number from 0 to 4096"
};

// "" when v is allowed, else what is wrong ("must be > 0, got nan").
std::string range_problem(double v, const Range& r);
// Throws Error("OPTION must be …, got …") when v is outside r.
void check_option(const std::string& option, double v, const Range& r);

// Threads: 0 means all cores. More than 4 × the cores only slows a run down (and libgomp crashes
// on tens of thousands), so that is the ceiling unless ANETRAIN_FORCE_THREADS=1, which raises it
// to the OpenMP thread limit (OMP_THREAD_LIMIT), capped at 1024.
int max_threads();
Range threads_range();
void check_threads(const std::string& option, int64_t v);

// Reads a number the way the CLI does (strtod over the whole string; "nan" and "inf" included)
// and applies range_problem; unparsable text is a problem too. For CLI11 validators.
std::string text_range_problem(const std::string& text, const Range& r);

}  // namespace anetrain
