#include "model/packed_model.h"

#include <cmath>

#include "core/dtype.h"
#include "core/error.h"
#include "model/lora.h"

namespace anetrain {

size_t PackedModel::index(ParamRole role, int layer) const {
  const ParamSpec& s = table.at(role, layer);
  return size_t(&s - table.specs().data());
}

const float* PackedModel::gain(ParamRole role, int layer) const {
  for (size_t i = 0; i < table.specs().size(); ++i)
    if (table.specs()[i].role == role && table.specs()[i].layer == layer)
      return static_cast<const float*>(tensors[i].data);
  return nullptr;
}

const MatrixRef& PackedModel::classifier() const {
  return at(cfg.tied_embeddings ? ParamRole::embedding : ParamRole::lm_head);
}

size_t PackedModel::weight_bytes() const {
  size_t n = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const ParamRole r = table.specs()[i].role;
    if (r == ParamRole::embedding) continue;  // one row per token, not the table
    n += tensors[i].bytes();
  }
  if (cfg.tied_embeddings) n += classifier().bytes();
  return n;
}

void* PackedModel::own(size_t bytes) {
  owned_.emplace_back(huge_alloc(bytes));
  return owned_.back().get();
}

int default_q8_group(const ModelConfig& c) {
  for (int g : {64, 32})
    if (c.dim % g == 0 && c.q_dim() % g == 0 && c.hidden_dim % g == 0) return g;
  for (int g : {64, 32})
    if (c.dim % g == 0 && c.q_dim() % g == 0) return g;  // the down projection then stays fp32
  fail("q8_0 needs the model width (dim " + std::to_string(c.dim) + ", heads×head_dim " + std::to_string(c.q_dim()) +
       ") to be a multiple of 32");
}

bool q8_fits(const MatrixRef& m, int group) { return group > 0 && m.cols % group == 0; }

std::unique_ptr<PackedModel> view_as_packed(const Model& m) {
  if (m.cfg.lora.rank > 0) fail("internal: a model with adapters is viewed for inference before merge_adapters");
  auto pm = std::make_unique<PackedModel>(m.cfg);
  for (size_t i = 0; i < pm->table.specs().size(); ++i) {
    const ParamSpec& s = pm->table.specs()[i];
    MatrixRef& t = pm->tensors[i];
    t.rows = s.is_matrix() ? int(s.shape[0]) : 1;
    t.cols = int(s.shape.back());
    t.data = m.params.data() + s.offset;
  }
  return pm;
}

std::unique_ptr<PackedModel> pack_model(std::unique_ptr<Model> m, WeightFormat format, int group) {
  merge_adapters(*m);  // inference matrices are the adapted ones: W + scale·B·A
  if (format == WeightFormat::f32) {
    auto pm = view_as_packed(*m);
    pm->keep(std::move(m));
    return pm;
  }
  auto pm = std::make_unique<PackedModel>(m->cfg);
  pm->format = format;
  if (format == WeightFormat::q8_0) {
    pm->group = group > 0 ? group : default_q8_group(m->cfg);
    if (pm->group % 32 != 0 || pm->group > 4096)
      fail("q8_0 group " + std::to_string(pm->group) + " must be a multiple of 32, at most 4096");
  }
  for (size_t i = 0; i < pm->table.specs().size(); ++i) {
    const ParamSpec& s = pm->table.specs()[i];
    const float* src = m->param(s);
    MatrixRef& t = pm->tensors[i];
    t.rows = s.is_matrix() ? int(s.shape[0]) : 1;
    t.cols = int(s.shape.back());
    const size_t n = s.numel();
    // Gains, and a matrix whose rows do not split into whole groups (stories260K's 172-wide down
    // projection), stay fp32.
    if (!s.is_matrix() || (format == WeightFormat::q8_0 && !q8_fits(t, pm->group))) {
      float* g = static_cast<float*>(pm->own(4 * n));
      std::copy(src, src + n, g);
      t.data = g;
      continue;
    }
    t.format = format;
    if (format == WeightFormat::bf16) {
      uint16_t* w = static_cast<uint16_t*>(pm->own(2 * n));
      for (size_t j = 0; j < n; ++j) w[j] = f32_to_bf16(src[j]);
      t.data = w;
    } else {
      for (size_t j = 0; j < n; ++j)
        if (!std::isfinite(src[j]))
          fail(s.name + " holds a non-finite value at element " + std::to_string(j) + "; it cannot be quantized");
      int8_t* q = static_cast<int8_t*>(pm->own(n));
      float* sc = static_cast<float*>(pm->own(4 * (n / size_t(pm->group))));
      quantize_q8_0(src, n, pm->group, q, sc);
      t.data = q;
      t.scales = sc;
      t.group = pm->group;
    }
  }
  return pm;
}

}  // namespace anetrain
