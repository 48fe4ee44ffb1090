// AdamW with decoupled weight decay (matrices only; norm gains are never decayed), global
// gradient-norm clipping, and the warmup + cosine learning-rate schedule.
// Matches torch.optim.AdamW + clip_grad_norm_ step for step (tests/reference/parity.py).
#pragma once
#include <cstdint>
#include <vector>

#include "contract/backend.h"
#include "model/model.h"

namespace anetrain {

struct AdamWConfig {
  double lr = 3e-4;
  double min_lr = 3e-5;
  int warmup = 100;
  int total_steps = 10000;  // optimizer updates, for the cosine
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double clip = 1.0;  // ≤ 0 disables clipping
  // 1: warmup and total_steps count updates. k > 1: the schedule counts micro-steps, k per update
  // (warmup in micro-steps, total_steps × k of them), and update `step` takes the rate of its last
  // micro-step, step·k + k − 1 — the seed's schedule, which `import-seed` continues.
  int lr_micro_steps = 1;
};

// Learning rate for 0-based update `step`: linear warmup to lr over `warmup` updates, then
// cosine down to min_lr at total_steps (held there afterwards).
double lr_at(const AdamWConfig& c, int64_t step);

// √(Σ g²) over every gradient (the trainable tensors'), accumulated in double.
double grad_norm(const Model& m);

class AdamW {
 public:
  AdamW(const Model& m, const AdamWConfig& c);
  // Clips, then updates m.params from m.grads with this step's lr, and leaves m.grads zero (for
  // the next step; m.grads_zero says so). Returns the pre-clip norm. Only the trainable tensors
  // have moments (m1, m2: laid out as the gradients) and change; the frozen ones stay as they are.
  double step(Model& m);
  // Same, with the gradient norm already computed by the caller (who checked it is finite).
  // bf16_mirror: when not null, receives bf16 of every new weight (m.params.size() values) in the
  // same pass — a backend's copy (its WeightMirror, contract/capabilities.h), so it need not read them again.
  // frozen_copied: the copy already holds the frozen tensors' values, which are then not rewritten.
  void step_with_norm(Model& m, double norm, uint16_t* bf16_mirror = nullptr, bool frozen_copied = false);
  // step_with_norm refilling `be`'s bf16 copy of the weights, when it keeps one.
  void step_with_norm(Model& m, double norm, Backend& be);
  // step(m) likewise.
  double step(Model& m, Backend& be);
  int64_t steps_taken() const { return t_; }
  std::vector<float>& m1() { return m_; }
  std::vector<float>& m2() { return v_; }
  void set_steps_taken(int64_t t) { t_ = t; }
  void set_total_steps(int total) { cfg_.total_steps = total; }
  const AdamWConfig& config() const { return cfg_; }
  double last_lr() const { return last_lr_; }

 private:
  AdamWConfig cfg_;
  std::vector<float> m_, v_;
  std::vector<uint8_t> decay_;  // per parameter tensor
  int64_t t_ = 0;
  double last_lr_ = 0;
};

}  // namespace anetrain
