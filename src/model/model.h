// A model instance: config, parameter table, one flat buffer of weights and one of gradients.
#pragma once
#include <vector>

#include "core/huge_pages.h"
#include "model/config.h"
#include "model/params.h"

namespace anetrain {

// Weights and gradients on huge pages (see core/huge_pages.h): both are streamed whole every step.
using FloatArena = std::vector<float, HugePageAllocator<float>>;

struct Model {
  explicit Model(const ModelConfig& c);
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  ModelConfig cfg;
  ParamTable table;
  FloatArena params;  // laid out by `table`
  FloatArena grads;   // same layout; allocated on first use, so inference never pays for it
  ModelTensors w;             // views into params
  ModelTensors g;             // views into grads (null until ensure_grads)

  float* param(const ParamSpec& s) { return params.data() + s.offset; }
  float* grad(const ParamSpec& s) { return grads.data() + s.offset; }
  void zero_grads();   // allocates the gradient buffer on first call
  void ensure_grads();
  // Set by the optimizer, which clears the gradients in its own pass over them; the next
  // zero_grads() then skips its pass over the arena. zero_grads() and backward() reset it, so it
  // only ever vouches for the stretch between an optimizer step and the next zero_grads().
  bool grads_zero = false;

  // Identifies the current weights, unique across all models of the process: every writer of
  // `params` (init, checkpoint load, the optimizer step) calls touch(), so a backend that derives
  // copies of the weights knows when to rebuild them (Backend::sync_weights).
  uint64_t version = 0;
  void touch();
};

// The seed's scratch initialisation: uniform U(−a, a) with a = 1/√fan_in for projections,
// scaled by 1/√(2L) for the two matrices that write into the residual stream, 0.02 for the
// embedding, 1 for norm gains. Deterministic in `seed`.
void init_random(Model& m, uint64_t seed);

}  // namespace anetrain
