// A model for inference whose matrices stay in their storage format (fp32, bf16 or Q8_0) — the
// decoder reads them as they are, so a quantized model costs its quantized bytes in memory and
// per token. One MatrixRef per row of the parameter table; gains (norms) are always fp32.
//
// Where the weights live: an fp32 model is a view of an ordinary Model (no copy); everything else
// is owned by the PackedModel in aligned huge-page buffers — a conversion (`--dtype bf16|q8_0` of
// an fp32 file) drops the fp32 model once converted; a llama2.c version-2 file's int8 values and
// scales, and a GGUF's BF16 tensors, are copied as they are; GGUF Q8_0 blocks are regrouped into
// values and scales. Readers drop each file page once copied, so a file is never resident twice.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "contract/packed.h"
#include "model/model.h"

namespace anetrain {

class PackedModel {
 public:
  ModelConfig cfg;
  ParamTable table;
  WeightFormat format = WeightFormat::f32;  // of the matrices (embedding and classifier included),
                                            // but for q8_0 ones that stay fp32 (see q8_fits)
  int group = 0;                            // Q8_0 group size (0 otherwise)
  std::vector<MatrixRef> tensors;           // one per table.specs() entry, same order

  explicit PackedModel(const ModelConfig& c) : cfg(c), table(c), tensors(table.specs().size()) {}
  PackedModel(const PackedModel&) = delete;
  PackedModel& operator=(const PackedModel&) = delete;

  const MatrixRef& at(ParamRole role, int layer = -1) const { return tensors[index(role, layer)]; }
  const float* gain(ParamRole role, int layer = -1) const;  // a 1-D tensor, or nullptr when absent
  const MatrixRef& classifier() const;                      // lm_head, or the embedding when tied
  size_t weight_bytes() const;  // bytes one decoded token reads from the matrices

  // ---- building (here, and the packed readers in formats/) ----
  size_t index(ParamRole role, int layer) const;
  void keep(std::unique_ptr<Model> m) { fp32_ = std::move(m); }  // the fp32 model `tensors` view
  void* own(size_t bytes);  // zeroed, 64-byte aligned, on huge pages; lives as long as the model

 private:
  std::unique_ptr<Model> fp32_;
  struct HugeFree {
    void operator()(void* p) const noexcept { huge_free(p); }
  };
  std::vector<std::unique_ptr<void, HugeFree>> owned_;
};

// Q8_0's group for a model: 64 (llama2.c's export default, fewer scale bytes) when it divides
// every matrix width, else 32 (GGUF's block). A matrix whose rows are not whole groups stays fp32
// in a Q8_0 model (q8_fits); an Error when even dim is not a multiple of 32.
int default_q8_group(const ModelConfig& c);
bool q8_fits(const MatrixRef& m, int group);

// The matrices of `m` in `format` (group for Q8_0; 0 = default_q8_group). fp32 keeps `m` and views it.
std::unique_ptr<PackedModel> pack_model(std::unique_ptr<Model> m, WeightFormat format, int group = 0);
// The fp32 matrices of `m` as a PackedModel that views them, for a caller that keeps `m` itself
// (and keeps it alive and in place while the view is used).
std::unique_ptr<PackedModel> view_as_packed(const Model& m);

}  // namespace anetrain
