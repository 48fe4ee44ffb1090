// llama2.c shared pieces (header → config, body order) and the version-0 reader. Every size is
// computed in 64 bits and checked against the file before anything is allocated or copied, so a
// hostile header is an Error naming the file and byte, never a huge allocation or a fault.
#include "formats/llama2c.h"

#include <cstring>

#include "core/error.h"

namespace anetrain {

namespace {
constexpr uint32_t kMagicAk42 = 0x616b3432;
}

ModelConfig llama2c_config(const int32_t h[7], bool shared, const std::string& path, uint64_t off,
                           uint64_t file_size) {
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i)
    if (h[i] <= 0)
      fail_at(path, off + uint64_t(4 * i), "header field " + std::string(names[i]) + " = " + std::to_string(h[i]) +
                                               " is invalid (not a llama2.c model file?)");
  ModelConfig c;
  c.arch = "llama";
  // Lower bound on the body: fp32 norms (2 per layer) plus an int8 embedding (v2's smallest form).
  const uint64_t least = 2 * uint64_t(h[2]) * uint64_t(h[0]) * 4 + uint64_t(h[5]) * uint64_t(h[0]);
  if (least > file_size)
    fail_at(path, off, "header promises at least " + std::to_string(least) + " bytes of weights but the file has " +
                           std::to_string(file_size) + " (truncated, or not a llama2.c model file?)");
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.vocab_size = h[5];
  c.max_seq_len = h[6];
  c.tied_embeddings = shared;
  // The format has no head_dim field: run.c derives it, so a header that does not divide is corrupt.
  if (c.dim % c.n_heads != 0)
    fail_at(path, off + 12, "n_heads " + std::to_string(c.n_heads) + " does not divide dim " + std::to_string(c.dim));
  c.head_dim = c.dim / c.n_heads;
  c.rope_theta = 10000.0;  // hard-coded in run.c
  c.rope_style = RopeStyle::interleaved;
  c.norm_eps = 1e-5;
  try {
    c.validate();
  } catch (const Error& e) {
    fail_at(path, off, std::string("header describes an invalid model: ") + e.what());
  }
  return c;
}

std::vector<Llama2cChunk> llama2c_body_order(const ParamTable& t, const ModelConfig& c, int version) {
  std::vector<Llama2cChunk> out;
  auto one = [&](ParamRole r, int layer = -1) {
    const ParamSpec& s = t.at(r, layer);
    out.push_back({s.offset, s.numel(), s.is_matrix()});
  };
  // Layers are stacked per tensor kind: all layers' wq, then all layers' wk, ...
  auto stacked = [&](ParamRole r) {
    for (int l = 0; l < c.n_layers; ++l) one(r, l);
  };
  if (version == 0) {
    one(ParamRole::embedding);
    for (ParamRole r : {ParamRole::attn_norm, ParamRole::wq, ParamRole::wk, ParamRole::wv, ParamRole::wo,
                        ParamRole::ffn_norm, ParamRole::w_gate, ParamRole::w_down, ParamRole::w_up})
      stacked(r);
    one(ParamRole::final_norm);
    out.push_back({Llama2cChunk::kRopeTables, uint64_t(c.max_seq_len) * uint64_t(c.head_dim / 2) * 2, false});
  } else {
    // export.py version1/2_export: norms first so v2 can keep them fp32 in one run.
    stacked(ParamRole::attn_norm);
    stacked(ParamRole::ffn_norm);
    one(ParamRole::final_norm);
    one(ParamRole::embedding);
    for (ParamRole r : {ParamRole::wq, ParamRole::wk, ParamRole::wv, ParamRole::wo, ParamRole::w_gate,
                        ParamRole::w_down, ParamRole::w_up})
      stacked(r);
  }
  if (!c.tied_embeddings) one(ParamRole::lm_head);
  return out;
}

std::unique_ptr<Model> load_llama2c(const std::string& path) {
  MappedFile f(path);
  f.require(0, 28, "llama2.c header (7 int32)");
  int32_t h[7];
  std::memcpy(h, f.data(), 28);
  if (uint32_t(h[0]) == kMagicAk42) return load_llama2c_ak42(f);
  // v0 marks an unshared classifier by a negative vocab_size.
  const bool shared = h[5] > 0;
  if (h[5] < 0 && h[5] != INT32_MIN) h[5] = -h[5];
  ModelConfig c = llama2c_config(h, shared, path, 0, f.size());

  // Sizes from the table alone (no weights allocated yet); the file must match them exactly.
  const ParamTable table(c);
  const std::vector<Llama2cChunk> order = llama2c_body_order(table, c, 0);
  uint64_t body = 0;
  for (const Llama2cChunk& ch : order) {
    if (ch.n > f.size()) f.require(28 + body, ch.n, "a llama2.c tensor");  // keeps the sum from overflowing
    body += ch.n * 4;
  }
  f.require(28, body, "llama2.c weights for the header's config");
  if (f.size() != 28 + body)
    fail_at(path, 28 + body, "file has " + std::to_string(f.size() - 28 - body) +
                                 " unexpected trailing bytes (header does not match the weights?)");

  auto m = allocate_model(c, path);
  uint64_t pos = 28;
  for (const Llama2cChunk& ch : order) {
    // freq_cis_real/imag: recomputed from theta at run time, as run.c does.
    if (ch.offset != Llama2cChunk::kRopeTables) std::memcpy(m->params.data() + ch.offset, f.data() + pos, ch.n * 4);
    f.release(pos, ch.n * 4);  // the file is never resident twice
    pos += ch.n * 4;
  }
  return m;
}

}  // namespace anetrain
