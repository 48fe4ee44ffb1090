#include "model/model.h"

#include <atomic>

#include <algorithm>
#include <cmath>

#include <cstdio>
#include <new>

#include "core/error.h"
#include "core/rng.h"

namespace anetrain {

Model::Model(const ModelConfig& c, WeightFormat base) : cfg(c), table(c, base), params(table.total(), 0.0f) {
  if (base != WeightFormat::f32) held = std::make_unique<HeldBase>(table);
  w = bind_tensors(table, cfg, params.data());
  touch();
}

float* Model::param(const ParamSpec& s) {
  if (s.held) fail("internal: tensor '" + s.name + "' is held in " + weight_format_name(table.base_format()) + ", not fp32");
  return params.data() + s.offset;
}

void Model::fill(const ParamSpec& s, const std::function<void(float*)>& write) {
  if (!s.held) return write(param(s));
  std::vector<float> values(s.numel());
  write(values.data());
  held->store(s, values.data());
}

void Model::fill_rows(const ParamSpec& s, const std::function<void(float*, size_t, size_t)>& write) {
  const size_t rows = s.is_matrix() ? size_t(s.shape[0]) : 1, cols = size_t(s.shape.back());
  if (!s.held) return write(param(s), 0, rows);
  const size_t band = std::max<size_t>(1, (size_t(1) << 20) / cols);  // ~4 MB of fp32
  std::vector<float> values(std::min(band, rows) * cols);
  for (size_t r0 = 0; r0 < rows; r0 += band) {
    const size_t n = std::min(band, rows - r0);
    write(values.data(), r0, n);
    held->store_rows(s, r0, n, values.data());
  }
}

void Model::read_rows(const ParamSpec& s, size_t r0, size_t n, float* out) const {
  const size_t cols = size_t(s.shape.back());
  if (s.held) return held->read_rows(s, r0, n, out);
  std::copy_n(params.data() + s.offset + r0 * cols, n * cols, out);
}

const ParamSpec& Model::classifier_spec() const {
  return table.at(cfg.tied_embeddings ? ParamRole::embedding : ParamRole::lm_head);
}

void Model::bring_layer(int l) {
  if (!held || slot_layer_[0] == l || slot_layer_[1] == l) return;
  static constexpr ParamRole kMatrices[] = {ParamRole::wq,     ParamRole::wk,   ParamRole::wv,    ParamRole::wo,
                                            ParamRole::w_gate, ParamRole::w_up, ParamRole::w_down};
  auto view = [](LayerTensors& L, ParamRole r) -> float*& { return of_projection(L, r); };
  const int slot = next_slot_;
  next_slot_ ^= 1;
  if (slot_layer_[slot] >= 0)
    for (ParamRole r : kMatrices) view(w.layers[size_t(slot_layer_[slot])], r) = nullptr;
  size_t need = 0;
  for (ParamRole r : kMatrices) need += table.at(r, l).numel();
  slots_[slot].resize(need);
  float* at = slots_[slot].data();
  for (ParamRole r : kMatrices) {
    const ParamSpec& s = table.at(r, l);
    read_rows(s, 0, size_t(s.shape[0]), at);
    view(w.layers[size_t(l)], r) = at;
    at += s.numel();
  }
  slot_layer_[slot] = l;
}

void Model::ensure_grads() {
  if (grads_bound_) return;
  grads.assign(table.grad_total(), 0.0f);
  g = bind_gradients(table, cfg, grads.data());
  grads_bound_ = true;
}

void Model::set_trainable(const std::function<bool(const ParamSpec&)>& trainable) {
  table.set_trainable(trainable);
  grads = FloatArena();
  g = ModelTensors{};
  grads_bound_ = false;
  grads_zero = false;
}

void Model::add_adapters(const LoraConfig& lora) {
  if (cfg.lora.rank > 0) fail("the model already has LoRA adapters (rank " + std::to_string(cfg.lora.rank) + ")");
  ModelConfig c = cfg;
  c.lora = lora;
  c.validate();
  relayout(c);
}

void Model::drop_adapters() {
  ModelConfig c = cfg;
  c.lora = LoraConfig{};
  relayout(c);
}

void Model::relayout(const ModelConfig& c) {
  // A held base is laid out with its adapters once (load_model's BaseLayout), never moved.
  if (held) fail("the model's base is held in " + weight_format_name(table.base_format()) + "; its adapters cannot change");
  cfg = c;
  table = ParamTable(cfg);
  const bool shrinks = table.total() < params.size();
  params.resize(table.total(), 0.0f);  // the base tensors keep their offsets: adapters follow them
  if (shrinks) params.shrink_to_fit();  // may move the buffer: the views are bound after it
  w = bind_tensors(table, cfg, params.data());
  grads = FloatArena();
  g = ModelTensors{};
  grads_bound_ = false;
  grads_zero = false;
  touch();
}

void Model::touch() {
  static std::atomic<uint64_t> next{1};
  version = next++;
}

void Model::zero_grads() {
  ensure_grads();
  if (!grads_zero) std::fill(grads.begin(), grads.end(), 0.0f);
  grads_zero = false;  // whatever follows writes them; only the optimizer's pass vouches again
}

double claimed_parameters(const ModelConfig& c) {
  const double D = c.dim, F = c.hidden_dim, V = c.vocab_size, q = double(c.n_heads) * c.head_dim,
               kv = double(c.n_kv_heads) * c.head_dim;
  const double per_layer = 2 * D + q * D + 2 * kv * D + D * q + 3 * F * D + (c.qk_norm ? 2.0 * c.head_dim : 0.0);
  return V * D * (c.tied_embeddings ? 1 : 2) + D + double(c.n_layers) * per_layer;
}

std::string claimed_size_text(const ModelConfig& c) {
  const double n = claimed_parameters(c), bytes = 4 * n;
  char buf[96];
  if (bytes >= 1e9) std::snprintf(buf, sizeof buf, "%.2g parameters (%.3g GB as fp32)", n, bytes / 1e9);
  else std::snprintf(buf, sizeof buf, "%.2g parameters (%.3g MB as fp32)", n, bytes / 1e6);
  return buf;
}

void check_claim_fits(const ModelConfig& c, const std::string& source, double available_bytes,
                      double min_bytes_per_param) {
  if (claimed_parameters(c) * min_bytes_per_param <= available_bytes) return;
  char held[48];
  std::snprintf(held, sizeof held, "%.3g MB", available_bytes / 1e6);
  fail(source + ": the config claims " + claimed_size_text(c) + " but only " + held +
       " of tensor data is stored with it; refusing to allocate for it");
}

namespace {
ModelConfig laid_out(const ModelConfig& c, const ModelLayout& layout, const std::string& source) {
  if (layout.lora.rank <= 0) return c;
  if (c.lora.rank > 0) fail(source + ": the model already has LoRA adapters (rank " + std::to_string(c.lora.rank) + ")");
  ModelConfig with = c;
  with.lora = layout.lora;
  with.validate();
  return with;
}
}  // namespace

std::unique_ptr<Model> relay_model(std::unique_ptr<Model> src, const ModelLayout& layout, const std::string& source) {
  if (layout.lora.rank <= 0 && layout.base == WeightFormat::f32) return src;
  auto m = allocate_model(src->cfg, source, layout);
  for (const ParamSpec& s : src->table.specs())
    m->fill(m->table.specs()[size_t(&s - src->table.specs().data())],
            [&](float* p) { std::copy_n(src->param(s), s.numel(), p); });
  m->touch();
  return m;
}

std::unique_ptr<Model> allocate_model(const ModelConfig& c, const std::string& source, const ModelLayout& layout) {
  const ModelConfig with = laid_out(c, layout, source);
  try {
    return std::make_unique<Model>(with, layout.base);
  } catch (const std::bad_alloc&) {
    fail(source + ": the config claims " + claimed_size_text(c) + "; cannot allocate");
  } catch (const std::length_error&) {  // std::vector's refusal of a size past max_size()
    fail(source + ": the config claims " + claimed_size_text(c) + "; cannot allocate");
  }
}

void init_random(Model& m, uint64_t seed) { init_random_where(m, seed, [](const ParamSpec&) { return true; }); }

void init_adapters(Model& m, uint64_t seed) { init_random_where(m, seed, is_adapter); }

void init_random_where(Model& m, uint64_t seed, const std::function<bool(const ParamSpec&)>& which) {
  Rng rng(seed);
  const double res = 1.0 / std::sqrt(2.0 * m.cfg.n_layers);
  for (const auto& s : m.table.specs()) {
    if (!which(s)) continue;
    // Bands of rows in order: the generator's sequence is the same however the rows are banded.
    m.fill_rows(s, [&](float* p, size_t, size_t rows) {
      const size_t n = rows * size_t(s.shape.back());
      if (!s.is_matrix()) return std::fill(p, p + n, 1.0f);
      // B starts at zero: a new adapter leaves the model as it was
      if (s.role == ParamRole::lora_b) return std::fill(p, p + n, 0.0f);
      // Projections and adapters' A: U(−a, a), a = 1/√fan_in (for A, PEFT's Kaiming-uniform bound).
      double a = 1.0 / std::sqrt(double(s.shape[1]));
      if (s.role == ParamRole::embedding) a = 0.02;
      if (s.role == ParamRole::wo || s.role == ParamRole::w_down) a *= res;
      for (size_t i = 0; i < n; ++i) p[i] = float((2.0 * rng.uniform() - 1.0) * a);
    });
  }
  m.touch();
}

}  // namespace anetrain
