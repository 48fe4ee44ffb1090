// The tiny models the ane-sim training tests share: a true Qwen3 in miniature (GQA 4/2,
// head_dim ≠ D/H, QK-norm, half RoPE at θ 1e6) and a Llama with interleaved RoPE, no QK-norm and
// D, F that are not multiples of the ANE's alignment.
#pragma once
#include "model/config.h"

namespace anetrain::test {

inline ModelConfig ane_tiny_qwen3(int layers) {
  ModelConfig c;
  c.arch = "qwen3";
  c.dim = 64, c.n_layers = layers, c.hidden_dim = 96, c.vocab_size = 97, c.max_seq_len = 64;
  c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 24, c.qk_norm = true;
  c.rope_style = RopeStyle::half, c.rope_theta = 1e6, c.norm_eps = 1e-6;
  c.validate();
  return c;
}

inline ModelConfig ane_tiny_llama(int layers) {
  ModelConfig c;
  c.dim = 48, c.n_layers = layers, c.hidden_dim = 80, c.vocab_size = 67, c.max_seq_len = 64;
  c.n_heads = 4, c.n_kv_heads = 4, c.head_dim = 12;
  c.rope_style = RopeStyle::interleaved, c.rope_theta = 1e4, c.norm_eps = 1e-5;
  c.validate();
  return c;
}

}  // namespace anetrain::test
