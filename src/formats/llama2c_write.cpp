// llama2.c writers for versions 0 and 1. The formats fix what run.c assumes (head_dim = dim/heads,
// θ = 10000, eps = 1e-5, interleaved RoPE, no QK-norm), so a model that differs is refused here,
// before any file exists, instead of being written as a file that runs as a different model.
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "formats/hf.h"
#include "formats/llama2c.h"

namespace anetrain {

namespace {
constexpr uint32_t kMagicAk42 = 0x616b3432;

}  // namespace

void check_llama2c_representable(const ModelConfig& c, const std::string& path, int version) {
  const std::string why = path + ": cannot write llama2.c version " + std::to_string(version) + ": ";
  const std::string hint = "\nhint: write a GGUF (--to gguf) or a Hugging Face folder (--to hf) instead";
  if (c.head_dim * c.n_heads != c.dim)
    fail(why + "head_dim " + std::to_string(c.head_dim) + " ≠ dim/n_heads (" + std::to_string(c.dim) + "/" +
         std::to_string(c.n_heads) + "); the format has no head_dim field" + hint);
  if (c.qk_norm) fail(why + "the model uses QK-norm, which the format has no tensors for" + hint);
  if (c.rope_theta != 10000.0)
    fail(why + "rope_theta is " + std::to_string(c.rope_theta) + "; run.c hard-codes 10000" + hint);
  // eps may come from an fp32 field (GGUF), so compare at fp32 precision.
  if (float(c.norm_eps) != 1e-5f)
    fail(why + "norm_eps is " + std::to_string(c.norm_eps) + "; run.c hard-codes 1e-5" + hint);
  if (c.residual_scale != 1.0)
    fail(why + "residual_scale is " + std::to_string(c.residual_scale) + "; the format has no such field" + hint);
}

namespace {

// freq_cis_real/imag as llama2.c's model.py computes them in fp32: cos/sin(pos · θ^(−2i/hd)).
// run.c ignores them; they are written so the file has the layout readers expect.
std::vector<float> rope_tables(const ModelConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<float> freqs(half);
  for (int i = 0; i < half; ++i)
    freqs[i] = 1.0f / std::pow(10000.0f, float(2 * i) / float(c.head_dim));
  std::vector<float> out(size_t(c.max_seq_len) * half * 2);
  float* re = out.data();
  float* im = out.data() + size_t(c.max_seq_len) * half;
  for (int t = 0; t < c.max_seq_len; ++t)
    for (int i = 0; i < half; ++i) {
      const float a = float(t) * freqs[i];
      re[size_t(t) * half + i] = std::cos(a);
      im[size_t(t) * half + i] = std::sin(a);
    }
  return out;
}
}  // namespace

void save_llama2c(const Model& src, const std::string& path, int version) {
  if (src.cfg.lora.rank > 0) fail("internal: a model with adapters is written as a plain model before merge_adapters");
  if (version != 0 && version != 1)
    fail(path + ": llama2.c version " + std::to_string(version) + " cannot be written (supported: 0, 1)");
  check_llama2c_representable(src.cfg, path, version);
  // llama2.c rotates adjacent pairs: a half-layout model's q/k rows are permuted first.
  std::unique_ptr<Model> copy;
  const Model* m = &in_rope_style(src, RopeStyle::interleaved, copy);
  const ModelConfig& c = m->cfg;
  const int32_t h[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.max_seq_len};
  AtomicFile f(path);
  if (version == 0) {
    int32_t h0[7];
    std::memcpy(h0, h, sizeof h);
    if (!c.tied_embeddings) h0[5] = -h0[5];  // v0's only way to say "separate classifier follows"
    f.write(h0, sizeof h0);
  } else {
    uint8_t header[256] = {};
    const int32_t v = 1;
    std::memcpy(header, &kMagicAk42, 4);
    std::memcpy(header + 4, &v, 4);
    std::memcpy(header + 8, h, sizeof h);
    header[36] = c.tied_embeddings ? 1 : 0;
    f.write(header, sizeof header);
  }
  for (const Llama2cChunk& ch : llama2c_body_order(m->table, c, version)) {
    if (ch.offset == Llama2cChunk::kRopeTables) {
      const std::vector<float> t = rope_tables(c);
      f.write(t.data(), t.size() * 4);
    } else {
      f.write(m->params.data() + ch.offset, ch.n * 4);
    }
  }
  f.commit();
}

}  // namespace anetrain
