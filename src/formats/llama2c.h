// llama2.c model files (reference-facts D.1–D.3): v0 (7 × int32 header, fp32 in run.c order,
// legacy RoPE tables, negative vocab = separate classifier), v1 ("ak42", 256-byte header, fp32,
// norms first) and v2 (v1 plus group_size, Q8_0 matrices dequantized on load). Weights keep
// llama2.c's interleaved RoPE layout; loaded configs say rope_style = interleaved.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "model/model.h"
#include "model/packed_model.h"

namespace anetrain {

// Reads any of v0, v1, v2: "ak42" magic selects v1/v2, anything else is parsed as v0.
std::unique_ptr<Model> load_llama2c(const std::string& path);

// Writes version 0 or 1 (version 2: save_llama2c_v2 below). A half-RoPE model is permuted to the interleaved
// layout on the way out; anything the format cannot say (head_dim ≠ dim/heads, QK-norm, θ ≠ 10000,
// eps ≠ 1e-5, residual scale ≠ 1) is an Error naming the field, before any file is created.
void save_llama2c(const Model& m, const std::string& path, int version);

// Version 2 kept quantized: int8 values and scales copied as stored (see llama2c_v2.cpp).
std::unique_ptr<PackedModel> load_llama2c_v2_packed(const std::string& path);
// Writes version 2 (runq.c's format) from a Q8_0 model, its values and scales as they are.
void save_llama2c_v2(const PackedModel& m, const std::string& path);

// ---- shared by llama2c.cpp, llama2c_v12.cpp and llama2c_write.cpp ----

// One run of floats in a file body: `n` floats of the parameter buffer starting at `offset`.
// `matrix` marks the tensors v2 quantizes; offset == kRopeTables marks v0's RoPE tables.
struct Llama2cChunk {
  static constexpr size_t kRopeTables = SIZE_MAX;
  size_t offset;
  uint64_t n;
  bool matrix;
};
// The body order of version 0 (run.c) or of versions 1/2 (export.py). Needs only the table, so
// a reader can size the file before allocating weights.
std::vector<Llama2cChunk> llama2c_body_order(const ParamTable& t, const ModelConfig& c, int version);

// Config from the 7 header ints {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab, seq_len}
// (vocab already made positive); errors point at `header_off` + 4·field. Also rejects headers
// whose norms and embedding alone could not fit in `file_size` bytes, before anything is sized
// from them (n_layers = 2^31 would otherwise build a table of billions of entries).
ModelConfig llama2c_config(const int32_t h[7], bool shared_classifier, const std::string& path,
                           uint64_t header_off, uint64_t file_size);

std::unique_ptr<Model> load_llama2c_ak42(const MappedFile& f);  // v1 and v2

// Refuses, naming the field, a model llama2.c version `version` cannot say (head_dim ≠ dim/heads,
// QK-norm, θ ≠ 10000, eps ≠ 1e-5, residual scale ≠ 1), before any file is created.
void check_llama2c_representable(const ModelConfig& c, const std::string& path, int version);

// A version 1/2 file's header and where each body chunk starts, all checked against the file.
struct Ak42Layout {
  ModelConfig cfg;
  int version;
  int group;  // v2's group_size (0 in v1)
  std::vector<Llama2cChunk> order;
  std::vector<uint64_t> pos;  // byte offset of each chunk in `order`
};
Ak42Layout read_ak42_layout(const MappedFile& f);

}  // namespace anetrain
