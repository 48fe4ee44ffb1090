// The frozen base of an adapter run held in bf16 or Q8_0 instead of fp32 (train --base-dtype):
// the base matrices (projections, embedding, classifier) live here alone, in the narrower format,
// and are read back as fp32 a row range at a time — a layer's while its stages run
// (Model::bring_layer), a vocabulary chunk's for the classifier. Norm gains and the adapters stay
// in the model's fp32 arena.
#pragma once
#include <cstdint>
#include <vector>

#include "contract/packed.h"
#include "model/params.h"

namespace anetrain {

class HeldBase {
 public:
  // Room for every held tensor of `table` (ParamSpec::held), in table.base_format(). Q8_0 needs
  // every held matrix's rows to be whole blocks of 32 (GGUF's rule); anything else is refused.
  explicit HeldBase(const ParamTable& table);
  WeightFormat format() const { return format_; }
  // Rounds (bf16: to nearest even) or quantises (Q8_0: blocks of 32 along a row, the scale
  // rounded to fp16 first, as GGUF writes it) s's fp32 values into the store.
  void store(const ParamSpec& s, const float* values);
  // The same for rows [r0, r0 + n) of s alone.
  void store_rows(const ParamSpec& s, size_t r0, size_t n, const float* values);
  // Rows [r0, r0 + n) of s as fp32: exactly the values the store holds (bf16 widened, q · scale).
  void read_rows(const ParamSpec& s, size_t r0, size_t n, float* out) const;
  size_t bytes() const;  // the store's size: values plus Q8_0 scales
  // A 64-bit hash of the stored bytes, computed once: checkpoints name the base they were trained on.
  uint64_t fingerprint() const;

 private:
  WeightFormat format_;
  std::vector<uint16_t> bf16_;
  std::vector<int8_t> q8_;
  std::vector<float> scales_;  // fp16 values, one per 32 of q8_, kept as fp32 for the product
  mutable uint64_t fingerprint_ = 0;
};

// What the store would make of n values, in place: the fp32 values a held base computes with.
// An fp32 model put through this computes what a held one does (the tests' reference; inference
// from a held run's checkpoint). Q8_0 needs n to be whole blocks of 32.
void round_like_held(WeightFormat f, float* values, size_t n);

// Parses --base-dtype: "f32", "bf16" or "q8_0"; throws Error naming the choices and `what`.
WeightFormat parse_base_dtype(const std::string& name, const std::string& what);

}  // namespace anetrain
