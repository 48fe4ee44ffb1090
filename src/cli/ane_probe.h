// `anetrain ane probe --model M`: a model's programs on the Neural Engine, checked against ane-sim.
#pragma once
#include <memory>
#include <string>

#include "backends/ane/runtime/runtime.h"

namespace anetrain {

// The runtime the probes run on: the Neural Engine's on macOS builds with it, else the same
// runtime code over the fake framework and ane-sim (`real` says which).
std::unique_ptr<ane::AneRuntime> open_probe_runtime(bool& real);

// Prints one row per program (JSON with as_json); returns 1 when any program was rejected or
// disagrees with ane-sim, else 0.
int probe_model(const std::string& model, int T, bool as_json);

}  // namespace anetrain
