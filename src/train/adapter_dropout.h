// Adapter dropout for one micro-batch (contract/tensors.h AdapterDropout): while a scope lives,
// every layer of the model drops its adapters' inputs with probability p under `key`, in a
// scratch buffer the scope owns; when it ends the model infers as before. train_step opens one
// per micro-batch with dropout_micro_batch_key(run seed, step, micro-batch); `grad
// --lora-dropout` with the key it is given.
#pragma once
#include <cstdint>
#include <vector>

namespace anetrain {

struct Model;
struct Workspace;

class AdapterDropoutScope {
 public:
  // p = 0 (or a model without adapters): nothing changes.
  AdapterDropoutScope(Model& m, const Workspace& ws, double p, uint64_t key);
  ~AdapterDropoutScope();
  AdapterDropoutScope(const AdapterDropoutScope&) = delete;
  AdapterDropoutScope& operator=(const AdapterDropoutScope&) = delete;

 private:
  Model& model_;
  std::vector<float> scratch_;
  bool on_ = false;
};

}  // namespace anetrain
