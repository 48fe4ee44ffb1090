#include "model/model.h"

#include <atomic>

#include <algorithm>
#include <cmath>

#include <cstdio>
#include <new>

#include "core/error.h"
#include "core/rng.h"

namespace anetrain {

Model::Model(const ModelConfig& c) : cfg(c), table(c), params(table.total(), 0.0f) {
  w = bind_tensors(table, cfg, params.data());
  touch();
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

std::unique_ptr<Model> allocate_model(const ModelConfig& c, const std::string& source) {
  try {
    return std::make_unique<Model>(c);
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
    float* p = m.param(s);
    if (!s.is_matrix()) {
      std::fill(p, p + s.numel(), 1.0f);
      continue;
    }
    if (s.role == ParamRole::lora_b) {  // B starts at zero: a new adapter leaves the model as it was
      std::fill(p, p + s.numel(), 0.0f);
      continue;
    }
    // Projections and adapters' A: U(−a, a), a = 1/√fan_in (for A, PEFT's Kaiming-uniform bound).
    double a = 1.0 / std::sqrt(double(s.shape[1]));
    if (s.role == ParamRole::embedding) a = 0.02;
    if (s.role == ParamRole::wo || s.role == ParamRole::w_down) a *= res;
    for (size_t i = 0; i < s.numel(); ++i) p[i] = float((2.0 * rng.uniform() - 1.0) * a);
  }
  m.touch();
}

}  // namespace anetrain
