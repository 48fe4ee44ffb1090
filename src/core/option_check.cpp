#include "core/option_check.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace anetrain {

namespace {

std::string number_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

}  // namespace

std::string Range::describe() const {
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  const std::string kind = integer ? "a whole number " : "";
  if (has_lo && has_hi) {
    if (integer && !lo_open && !hi_open) return kind + "from " + number_text(lo) + " to " + number_text(hi);
    return kind + "in " + (lo_open ? "(" : "[") + number_text(lo) + ", " + number_text(hi) + (hi_open ? ")" : "]");
  }
  if (has_lo) return kind + (lo_open ? "> " : "≥ ") + number_text(lo);
  if (has_hi) return kind + (hi_open ? "< " : "≤ ") + number_text(hi);
  return integer ? "a whole number" : "a finite number";
}

std::string range_problem(double v, const Range& r) {
  // Written so that NaN fails every comparison; infinities are never an option's value.
  const bool above_lo = r.lo_open ? v > r.lo : v >= r.lo;
  const bool below_hi = r.hi_open ? v < r.hi : v <= r.hi;
  const bool whole = !r.integer || (std::isfinite(v) && v == std::floor(v));
  if (above_lo && below_hi && whole && std::isfinite(v)) return "";
  return "must be " + r.describe() + ", got " + number_text(v);
}

void check_option(const std::string& option, double v, const Range& r) {
  const std::string problem = range_problem(v, r);
  if (!problem.empty()) fail(option + " " + problem);
}

int max_threads() {
  const long cores = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  const char* force = std::getenv("ANETRAIN_FORCE_THREADS");
  if (force && std::strcmp(force, "1") == 0) return std::min(1024, std::max(1, omp_get_thread_limit()));
  return int(std::min(4 * cores, long(std::max(1, omp_get_thread_limit()))));
}

Range threads_range() { return Range::between(0, max_threads()).whole(); }

void check_threads(const std::string& option, int64_t v) {
  const std::string problem = range_problem(double(v), threads_range());
  if (!problem.empty())
    fail(option + " " + problem + " (0 = all cores; more than 4 per core only slows a run down — " +
         "ANETRAIN_FORCE_THREADS=1 allows up to the OpenMP thread limit)");
}

std::string text_range_problem(const std::string& text, const Range& r) {
  const char* s = text.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  if (end == s || *end != '\0') return "must be a number " + r.describe() + ", got '" + text + "'";
  return range_problem(v, r);
}

}  // namespace anetrain
