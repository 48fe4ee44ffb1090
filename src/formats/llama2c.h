// llama2.c model files. Version 0 ("legacy"): 7 × int32 header {dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len}, fp32 tensors in run.c order, legacy RoPE tables,
// and a separate classifier when vocab_size < 0. Weights keep llama2.c's (interleaved) RoPE
// layout; the returned config says rope_style = interleaved.
#pragma once
#include <memory>
#include <string>

#include "model/model.h"

namespace anetrain {

std::unique_ptr<Model> load_llama2c(const std::string& path);

}  // namespace anetrain
