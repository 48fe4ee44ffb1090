#include "formats/llama2c.h"

#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"

namespace anetrain {

namespace {
constexpr uint32_t kMagicAk42 = 0x616b3432;
}

std::unique_ptr<Model> load_llama2c(const std::string& path) {
  MappedFile f(path);
  f.require(0, 28, "llama2.c header (7 int32)");
  int32_t h[7];
  std::memcpy(h, f.data(), 28);
  if (uint32_t(h[0]) == kMagicAk42)
    fail(path + ": llama2.c version " + std::to_string(h[1]) +
         " (\"ak42\") files are not supported yet; only version 0 is.\nhint: re-export with llama2.c export.py --version 0");
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i)
    if (h[i] == 0 || (i != 5 && h[i] < 0) || h[i] == INT32_MIN)
      fail_at(path, uint64_t(4 * i), "header field " + std::string(names[i]) + " = " + std::to_string(h[i]) +
                                         " is invalid (not a llama2.c model file?)");
  ModelConfig c;
  c.arch = "llama";
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.tied_embeddings = h[5] > 0;
  c.vocab_size = h[5] > 0 ? h[5] : -h[5];
  c.max_seq_len = h[6];
  if (c.n_heads <= 0 || c.dim % c.n_heads != 0)
    fail_at(path, 12, "n_heads " + std::to_string(c.n_heads) + " does not divide dim " + std::to_string(c.dim));
  c.head_dim = c.dim / c.n_heads;
  c.rope_theta = 10000.0;
  c.rope_style = RopeStyle::interleaved;
  c.norm_eps = 1e-5;
  try {
    c.validate();
  } catch (const Error& e) {
    fail_at(path, 0, std::string("header describes an invalid model: ") + e.what());
  }
  // Sizes in 64-bit before touching memory, so a hostile header cannot make us allocate wildly.
  const uint64_t D = c.dim, F = c.hidden_dim, L = c.n_layers, V = c.vocab_size, kv = uint64_t(c.kv_dim());
  const uint64_t rope = uint64_t(c.max_seq_len) * (c.head_dim / 2) * 2;
  const uint64_t body = V * D + L * D + L * D * D + 2 * L * kv * D + L * D * D + L * D + 3 * L * F * D + D + rope +
                        (c.tied_embeddings ? 0 : V * D);
  f.require(28, body * 4, "llama2.c weights for the header's config");
  if (f.size() != 28 + body * 4)
    fail_at(path, 28 + body * 4, "file has " + std::to_string(f.size() - 28 - body * 4) +
                                     " unexpected trailing bytes (header does not match the weights?)");

  auto m = std::make_unique<Model>(c);
  const float* src = reinterpret_cast<const float*>(f.data() + 28);
  auto take = [&](float* dst, uint64_t n) {
    std::memcpy(dst, src, n * 4);
    src += n;
  };
  // Stacked per-layer arrays: all layers of one tensor kind are contiguous.
  auto take_layers = [&](float* LayerTensors::*field, uint64_t n) {
    for (int l = 0; l < c.n_layers; ++l) take(m->w.layers[l].*field, n);
  };
  take(m->w.embedding, V * D);
  take_layers(&LayerTensors::attn_norm, D);
  take_layers(&LayerTensors::wq, D * D);
  take_layers(&LayerTensors::wk, kv * D);
  take_layers(&LayerTensors::wv, kv * D);
  take_layers(&LayerTensors::wo, D * D);
  take_layers(&LayerTensors::ffn_norm, D);
  take_layers(&LayerTensors::w_gate, F * D);
  take_layers(&LayerTensors::w_down, D * F);
  take_layers(&LayerTensors::w_up, F * D);
  take(m->w.final_norm, D);
  src += rope;  // freq_cis_real/imag: recomputed from theta instead
  if (!c.tied_embeddings) take(m->w.classifier, V * D);
  return m;
}

}  // namespace anetrain
