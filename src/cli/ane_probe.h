// `anetrain ane probe --model M`: a model's programs on the Neural Engine, checked against ane-sim.
#pragma once
#include <string>

namespace anetrain {

// Prints one row per program (JSON with as_json); returns 1 when any program was rejected or
// disagrees with ane-sim, else 0.
int probe_model(const std::string& model, int T, bool as_json);

}  // namespace anetrain
