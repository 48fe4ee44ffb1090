// Helpers shared by the file-format tests: scratch folders, whole-file I/O, tiny random models
// of both families, logits on the cpu backend, and "this must throw anetrain::Error" checks.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/error.h"
#include "model/model.h"
#include "model/transformer.h"

namespace anetrain::fmt_test {

namespace fs = std::filesystem;
inline const std::string kAssets = ANETRAIN_ASSETS;

// A fresh folder per test name and process, so parallel ctest runs never share files.
inline fs::path scratch(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("anetrain_fmt_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

inline std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
inline void spit(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

// Norm gains are randomised too (init_random sets them to 1), so a misplaced gain shows up.
inline std::unique_ptr<Model> random_model(const ModelConfig& c, uint64_t seed) {
  auto m = std::make_unique<Model>(c);
  init_random(*m, seed);
  uint64_t s = seed * 2654435761u + 1;
  for (const ParamSpec& p : m->table.specs())
    if (!p.is_matrix())
      for (size_t i = 0; i < p.numel(); ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        m->param(p)[i] = 0.5f + float(s >> 40) / float(1 << 24);
      }
  return m;
}

inline ModelConfig tiny_llama(bool tied) {
  ModelConfig c;
  c.arch = "llama";
  c.dim = 16, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 4, c.hidden_dim = 24;
  c.vocab_size = 32, c.max_seq_len = 16, c.rope_style = RopeStyle::interleaved, c.tied_embeddings = tied;
  return c;
}

// Qwen3's shape in miniature: QK-norm, GQA, head_dim ≠ dim/heads, half RoPE, θ = 1e6, eps = 1e-6.
inline ModelConfig tiny_qwen3() {
  ModelConfig c;
  c.arch = "qwen3";
  c.dim = 16, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8, c.hidden_dim = 24;
  c.vocab_size = 40, c.max_seq_len = 32, c.rope_theta = 1e6, c.norm_eps = 1e-6, c.qk_norm = true;
  c.rope_style = RopeStyle::half, c.tied_embeddings = true;
  return c;
}

inline std::vector<float> logits(Model& m, const std::vector<int32_t>& ids) {
  CpuBackend be;
  const int T = int(ids.size());
  Workspace ws(m.cfg, 1, T);
  for (int t = 0; t < T; ++t) ws.inputs[t] = ids[t], ws.targets[t] = ids[(t + 1) % T];
  forward(be, m, ws);
  return std::vector<float>(ws.logits, ws.logits + size_t(T) * m.cfg.vocab_size);
}

inline void expect_same_config(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.dim, b.dim);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.hidden_dim, b.hidden_dim);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.max_seq_len, b.max_seq_len);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.qk_norm, b.qk_norm);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
}

// Hand-assembled GGUF bytes, for files no writer would produce. `wide` false gives v1 widths.
struct GgufBytes {
  bool wide = true;
  std::string b;
  template <typename T> GgufBytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  GgufBytes& u32(uint32_t v) { return put(v); }
  GgufBytes& u64(uint64_t v) { return put(v); }
  GgufBytes& count(uint64_t n) { return wide ? put(n) : put(uint32_t(n)); }
  GgufBytes& str(const std::string& s) {
    count(s.size());
    b += s;
    return *this;
  }
  GgufBytes& kv_u32(const std::string& k, uint32_t v) { return str(k).u32(4).u32(v); }
  GgufBytes& kv_str(const std::string& k, const std::string& v) { return str(k).u32(8).str(v); }
  GgufBytes& pad(size_t align) {
    b.resize((b.size() + align - 1) / align * align, '\0');
    return *this;
  }
};

// Runs fn and insists it throws anetrain::Error whose message holds `needle`.
inline void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace anetrain::fmt_test
