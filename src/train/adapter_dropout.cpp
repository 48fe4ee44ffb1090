#include "train/adapter_dropout.h"

#include <algorithm>

#include "model/model.h"
#include "model/workspace.h"

namespace anetrain {

AdapterDropoutScope::AdapterDropoutScope(Model& m, const Workspace& ws, double p, uint64_t key) : model_(m) {
  if (!(p > 0) || m.cfg.lora.rank <= 0) return;
  const ModelConfig& c = m.cfg;
  // The widest input an adapter can have: D (q, k, v, gate, up), Hq·hd (o), F (down).
  const size_t widest = size_t(std::max({c.dim, c.q_dim(), c.hidden_dim}));
  scratch_.resize(size_t(ws.B) * size_t(ws.T) * widest);
  for (size_t l = 0; l < m.w.layers.size(); ++l)
    m.w.layers[l].lora.dropout = AdapterDropout{p, key, int(l), scratch_.data()};
  on_ = true;
}

AdapterDropoutScope::~AdapterDropoutScope() {
  if (!on_) return;
  for (LayerTensors& L : model_.w.layers) L.lora.dropout = AdapterDropout{};
}

}  // namespace anetrain
