// What the real ANE compiler and runtime refuse, as the seed found it on hardware, so that a
// program the simulator accepts is one the Neural Engine accepts too.
#pragma once
#include <string>
#include <vector>

#include "mil/program.h"

namespace anetrain::sim {

enum class When { compile, evaluate, warning };

struct LimitViolation {
  std::string limit;    // short id: "single-input", "io-layout", "conv-input-channels", "sdpa-mask"
  When when;            // where the hardware path fails (or only misbehaves)
  std::string message;  // what is wrong with this program
  std::string source;   // where the seed recorded the limit
};

// Largest conv input-channel count we accept. The seed saw IC = 2048 compile (its static FFN)
// and IC = 32000 rejected (its classifier backward); the exact limit in between is unknown, and
// 16384 is the largest tensor extent other ANE measurements report accepted.
constexpr int64_t kMaxConvInputChannels = 16384;
// Compile+load operations one process can do before the ANE compiler fails.
constexpr int kCompileBudget = 119;

std::vector<LimitViolation> check_ane_limits(const mil::Program& p);

}  // namespace anetrain::sim
