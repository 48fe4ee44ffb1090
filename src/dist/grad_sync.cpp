#include "dist/grad_sync.h"

#include <chrono>

namespace anetrain {

GradSync::GradSync(Comm& comm, const Model& m, bool overlap)
    : comm_(comm), overlap_(overlap), n_layers_(m.cfg.n_layers), total_(m.table.grad_total()) {
  // Bucket k: 0 = embedding, 1 + l = layer l, L + 1 = the head (final norm through the end), over
  // the gradient arena: a part whose tensors are all frozen has an empty bucket.
  std::vector<size_t> begin(size_t(n_layers_) + 2, total_), end(size_t(n_layers_) + 2, 0);
  for (const ParamSpec& s : m.table.specs()) {
    if (!s.trainable) continue;
    size_t k = s.layer >= 0 ? size_t(s.layer) + 1 : s.role == ParamRole::embedding ? 0 : size_t(n_layers_) + 1;
    begin[k] = std::min(begin[k], s.grad_offset);
    end[k] = std::max(end[k], s.grad_offset + s.numel());
  }
  size_t covered = 0;
  for (size_t k = 0; k < begin.size(); ++k) {
    if (end[k] < begin[k]) begin[k] = end[k] = 0;
    buckets_.emplace_back(begin[k], end[k] - begin[k]);
    covered += end[k] - begin[k];
  }
  // The table promises contiguous layers; a bucket that overlapped another would be summed twice.
  if (covered != total_) throw std::logic_error("GradSync: parameter table buckets do not tile the gradients");
  started_.assign(buckets_.size(), 0);
}

void GradSync::start(Model& m, size_t bucket) {
  if (started_[bucket]) return;
  started_[bucket] = 1;
  if (buckets_[bucket].second == 0) return;
  comm_.start_sum(m.grads.data() + buckets_[bucket].first, buckets_[bucket].second);
}

void GradSync::part_final(Model& m, int part) {
  if (overlap_) start(m, part < 0 ? 0 : size_t(part) + 1);
  comm_.progress();
}

double GradSync::finish(Model& m, const std::string& what) {
  const auto t = std::chrono::steady_clock::now();
  for (size_t k = buckets_.size(); k-- > 0;) start(m, k);
  comm_.finish_sums(what);
  started_.assign(buckets_.size(), 0);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace anetrain
