// The training programs of one layer shape, in one list: what AneBackend compiles (its stages
// look their programs up here by kernel), what `anetrain ane dump` writes and what the strict
// grid checks — so the three cannot drift apart.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "backends/ane/programs.h"

namespace anetrain::ane {

struct PlannedProgram {
  std::string kernel;  // the stage's name in telemetry: qkv_fwd, attention_fwd, wo_fwd, ...
  std::string key;     // one compiled program per key (wo_fwd and q_bwd share one when square)
  std::function<KernelProgram()> make;
  std::string stage;   // the block stage it belongs to: "attention" or "ffn"
};

// Keys of the product programs at padded sizes (ic and T multiples of kAneAlign).
std::string linear_key(int ic, int oc, int T);
std::string dual_linear_key(int ic, int oc, int T);

// True when the FFN's three weights fit one program input (T + 3F ≤ kAneMaxWidth at the padded
// sizes); otherwise the forward runs as three products (ffn_gate, ffn_up, ffn_down).
bool ffn_fused(const LayerShape& s);

// Every training program of a layer, by kernel, in the order a step first runs them.
std::vector<PlannedProgram> training_programs(const LayerShape& s);
// The one entry of `kernel` (throws Error for a kernel the layer does not run).
PlannedProgram planned_program(const LayerShape& s, const std::string& kernel);

}  // namespace anetrain::ane
