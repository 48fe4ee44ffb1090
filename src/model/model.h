// A model instance: config, parameter table, one flat buffer of weights and one of gradients.
#pragma once
#include <functional>
#include <memory>
#include <string>
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
  // The trainable tensors' gradients, at their grad_offset (the same layout as params while
  // every tensor is trainable); allocated on first use, so inference never pays for it.
  FloatArena grads;
  ModelTensors w;  // views into params
  ModelTensors g;  // views into grads: nullptr for a frozen tensor, and for all until ensure_grads

  float* param(const ParamSpec& s) { return params.data() + s.offset; }
  float* grad(const ParamSpec& s) { return s.trainable ? grads.data() + s.grad_offset : nullptr; }
  void zero_grads();   // allocates the gradient buffer on first call
  void ensure_grads();
  // Which tensors train (ParamTable::set_trainable); drops the gradients, which the next
  // ensure_grads lays out again. An optimizer made before this no longer fits the model.
  void set_trainable(const std::function<bool(const ParamSpec&)>& trainable);
  // Set by the optimizer, which clears the gradients in its own pass over them; the next
  // zero_grads() then skips its pass over the arena. zero_grads() and backward() reset it, so it
  // only ever vouches for the stretch between an optimizer step and the next zero_grads().
  bool grads_zero = false;
  // Makes these weights the frozen base of adapters `lora` (their values zero until set, e.g. by
  // init_adapters): the config and table gain them after every base tensor, which keeps its offset.
  void add_adapters(const LoraConfig& lora);
  // Forgets the adapters (their values are lost; merge_adapters in model/lora.h folds them in first).
  void drop_adapters();

  // Identifies the current weights, unique across all models of the process: every writer of
  // `params` (init, checkpoint load, the optimizer step) calls touch(), so a backend that derives
  // copies of the weights knows when to rebuild them (Backend::sync_weights).
  uint64_t version = 0;
  void touch();

 private:
  void relayout(const ModelConfig& c);  // a new table for c over the same base tensors
  bool grads_bound_ = false;
};

// The parameters a config describes — ParamTable(c).total() — computed in double without
// building the table, so an absurd config (a vocabulary of 2^31, 10^9 layers) cannot overflow or
// allocate before it is refused.
double claimed_parameters(const ModelConfig& c);

// Refuses, before any table or buffer exists, a config read from `source` that claims more
// parameters than `available_bytes` of tensor data can hold at `min_bytes_per_param` (the
// narrowest dtype the format stores): Error "SOURCE: the config claims 1.2e+10 parameters
// (48 GB as fp32) but only 1.1 MB of tensor data is stored with it; refusing to allocate for it".
void check_claim_fits(const ModelConfig& c, const std::string& source, double available_bytes, double min_bytes_per_param);

// new Model(c) for weights from `source` (file or folder): std::bad_alloc becomes Error
// "SOURCE: the config claims 1.2e+10 parameters (48 GB as fp32); cannot allocate".
std::unique_ptr<Model> allocate_model(const ModelConfig& c, const std::string& source);

// "1.2e+10 parameters (48 GB as fp32)": the size a config claims, for error messages.
std::string claimed_size_text(const ModelConfig& c);

// The seed's scratch initialisation: uniform U(−a, a) with a = 1/√fan_in for projections,
// scaled by 1/√(2L) for the two matrices that write into the residual stream, 0.02 for the
// embedding, 1 for norm gains. Deterministic in `seed`.
void init_random(Model& m, uint64_t seed);
// The same rule over the tensors `which` picks (the others keep their values).
void init_random_where(Model& m, uint64_t seed, const std::function<bool(const ParamSpec&)>& which);
// A new adapter: every A uniform in ±1/√in, every B zero, so the model computes what its base does.
void init_adapters(Model& m, uint64_t seed);

}  // namespace anetrain
