// The C API's gradients (include/anetrain.h): the parameter table, so a caller can find a tensor
// in the flat layout, and one forward + backward pass writing ∂loss/∂θ into the caller's buffer
// (Python hands it a numpy array, so the gradients are written once, where they are read).
#include <algorithm>
#include <cstring>

#include "anetrain.h"
#include "capi/model_handle.h"
#include "model/workspace.h"
#include "train/step.h"

using namespace anetrain;
using namespace anetrain::capi;

namespace {

// Tokens and targets checked against the vocabulary before anything runs.
void check_ids(const int32_t* ids, size_t n, int V, const char* what) {
  for (size_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= V)
      refuse(ANETRAIN_ERR_INPUT, std::string(what) + " " + std::to_string(ids[i]) + " at " + std::to_string(i) +
                                     " is outside the vocabulary (" + std::to_string(V) + ")");
}

}  // namespace

extern "C" {

anetrain_status anetrain_model_tensor_count(const anetrain_model* model, size_t* count, size_t* params) {
  return guarded("anetrain_model_tensor_count", [&] {
    const auto m = g_models.get(model);
    const ParamTable& t = m->loaded.model->table;
    if (count) *count = t.specs().size();
    if (params) *params = t.total();
  });
}

anetrain_status anetrain_model_tensor(const anetrain_model* model, size_t index, char* name, size_t* name_len,
                                      int64_t* shape, int32_t* rank, size_t* offset) {
  return guarded("anetrain_model_tensor", [&] {
    const auto m = g_models.get(model);
    const ParamTable& t = m->loaded.model->table;
    if (index >= t.specs().size())
      refuse(ANETRAIN_ERR_ARGUMENT, "tensor " + std::to_string(index) + " of " + std::to_string(t.specs().size()));
    const ParamSpec& s = t.specs()[index];
    if (name) {
      need(name_len, "name_len");
      const size_t want = s.name.size() + 1;  // with the terminating NUL
      if (*name_len < want) {
        *name_len = want;
        refuse(ANETRAIN_ERR_BUFFER, "the name needs " + std::to_string(want) + " bytes");
      }
      std::memcpy(name, s.name.c_str(), want);
      *name_len = want;
    } else if (name_len) {
      *name_len = s.name.size() + 1;
    }
    if (shape)
      for (size_t d = 0; d < 2; ++d) shape[d] = d < s.shape.size() ? s.shape[d] : 1;
    if (rank) *rank = int32_t(s.shape.size());
    if (offset) *offset = s.offset;
  });
}

anetrain_status anetrain_backward(anetrain_model* model, const int32_t* tokens, const int32_t* targets, int32_t batch,
                                  int32_t seq, float* grads, size_t grads_count, double* loss) {
  return guarded("anetrain_backward", [&] {
    const auto m = g_models.get(model);
    need(tokens, "tokens");
    need(targets, "targets");
    need(grads, "grads");
    Model& mm = *m->loaded.model;
    if (batch < 1 || seq < 1 || seq > mm.cfg.max_seq_len || int64_t(batch) * seq > (int64_t(1) << 24))
      refuse(ANETRAIN_ERR_ARGUMENT, "batch " + std::to_string(batch) + " × seq " + std::to_string(seq) +
                                        " is out of range (seq ≤ " + std::to_string(mm.cfg.max_seq_len) + ")");
    if (grads_count != mm.table.total())
      refuse(ANETRAIN_ERR_ARGUMENT, "grads holds " + std::to_string(grads_count) + " floats; the model has " +
                                        std::to_string(mm.table.total()) + " parameters");
    const size_t N = size_t(batch) * size_t(seq);
    check_ids(tokens, N, mm.cfg.vocab_size, "token");
    check_ids(targets, N, mm.cfg.vocab_size, "target");
    Workspace ws(mm.cfg, batch, seq);
    std::copy(tokens, tokens + N, ws.inputs.begin());
    std::copy(targets, targets + N, ws.targets.begin());
    // fp16 backends (ane-sim): loss-scaled as `anetrain grad` is (train/step.h).
    const ScaledGradients sg = forward_backward_scaled(*m->backend, mm, ws);
    std::copy(mm.grads.begin(), mm.grads.end(), grads);
    if (loss) *loss = sg.loss;
  });
}

}  // extern "C"
