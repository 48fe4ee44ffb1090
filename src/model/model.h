// A model instance: config, parameter table, one flat buffer of weights and one of gradients.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/huge_pages.h"
#include "model/config.h"
#include "model/held_base.h"
#include "model/params.h"

namespace anetrain {

// Weights and gradients on huge pages (see core/huge_pages.h): both are streamed whole every step.
using FloatArena = std::vector<float, HugePageAllocator<float>>;

// Where a held base came from, so a checkpoint can name it instead of storing it: the MODEL
// argument (absolute when a path) and the seed a preset or JSON config is initialised with.
struct BaseSource {
  std::string model;
  uint64_t seed = 0;
};

struct Model {
  // `base` other than f32: the frozen base matrices of an adapter config are held in that format
  // (Model::held), and the fp32 arena holds only the norm gains and the adapters.
  explicit Model(const ModelConfig& c, WeightFormat base = WeightFormat::f32);
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

  std::unique_ptr<HeldBase> held;  // the held base matrices; nullptr: every tensor is in params
  BaseSource base_source;          // set by load_model for a held base

  float* param(const ParamSpec& s);  // a tensor in the fp32 arena (Error for a held one)
  // Where a loader or initialiser puts tensor s: `write` fills s's numel() fp32 values, into the
  // arena, or — for a held tensor — into a temporary that is then rounded into the store.
  void fill(const ParamSpec& s, const std::function<void(float*)>& write);
  // The same a band of rows at a time, in order: `write(dst, r0, n)` fills rows [r0, r0 + n). A
  // held tensor then needs only a few MB of fp32, not its whole size (Qwen3's embedding: 622 MB).
  void fill_rows(const ParamSpec& s, const std::function<void(float*, size_t, size_t)>& write);
  // Rows [r0, r0 + n) of a matrix as fp32, from the arena or the held store.
  void read_rows(const ParamSpec& s, size_t r0, size_t n, float* out) const;
  const ParamSpec& classifier_spec() const;
  // Before layer l's stages run: with a held base, its matrices are read into one of two fp32
  // slots and w.layers[l] points at them (the views of the layer that slot held before are
  // cleared, so a stale read faults); nothing to do for an fp32 model.
  void bring_layer(int l);
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
  std::vector<float> slots_[2];
  int slot_layer_[2] = {-1, -1};
  int next_slot_ = 0;
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
// How a loader lays out the model it fills: adapters `lora` (rank 0: none) after the base tensors
// of the file's config, and the frozen base matrices held in `base` (f32: in the arena). A loader
// reads the base straight into this layout, so a new adapter run never holds its base twice.
struct ModelLayout {
  LoraConfig lora;
  WeightFormat base = WeightFormat::f32;
};

// ... laid out by `layout` (the source's own config must then have no adapters).
std::unique_ptr<Model> allocate_model(const ModelConfig& c, const std::string& source, const ModelLayout& layout = {});
// `src` in `layout` (for loaders that fill an fp32 model first): each base tensor copied over, the
// adapters zero; `src` is freed.
std::unique_ptr<Model> relay_model(std::unique_ptr<Model> src, const ModelLayout& layout, const std::string& source);

// "1.2e+10 parameters (48 GB as fp32)": the size a config claims, for error messages.
std::string claimed_size_text(const ModelConfig& c);

// Scratch initialisation: uniform U(−a, a) with a = 1/√fan_in for every projection, scaled by
// 1/√(2L) for the two matrices that write into the residual stream (Wo, W_down), 0.02 for the
// embedding, 1 for norm gains. Deterministic in `seed` (its own generator, not drand48). The
// seed system's rule differs for the FFN: it drew W_gate and W_up with 1/√hidden and W_down with
// 1/√dim (fan-out, not fan-in); Wq/Wk/Wv, Wo, the embedding and the gains agree.
void init_random(Model& m, uint64_t seed);
// The same rule over the tensors `which` picks (the others keep their values).
void init_random_where(Model& m, uint64_t seed, const std::function<bool(const ParamSpec&)>& which);
// A new adapter: every A uniform in ±1/√in, every B zero, so the model computes what its base does.
void init_adapters(Model& m, uint64_t seed);

}  // namespace anetrain
