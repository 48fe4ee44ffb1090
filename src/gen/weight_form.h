// Which form of the weights a backend decodes from. A backend whose fused stages are its point
// (Capabilities::fused_stages: the ANE's programs) runs them on the fp32 Model; every other reads
// packed matrices (PackedModel: fp32 as a view, or bf16 / Q8_0), through its packed products.
#pragma once
#include "contract/backend.h"

namespace anetrain {

inline bool decodes_packed(Backend& be) { return !be.caps().fused_stages; }

}  // namespace anetrain
