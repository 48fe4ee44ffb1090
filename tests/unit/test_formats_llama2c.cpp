// llama2.c versions 1 and 2 and the v0/v1 writers: the real Q8_0 file dequantizes to within half a
// quantization step of stories260K.bin (and its scales are exactly max|w|/127 per group, which
// pins the per-layer layout); writers round-trip bit for bit and refuse what the format cannot say.
#include <cmath>
#include <cstring>

#include "format_test_util.h"
#include "formats/hf.h"
#include "formats/llama2c.h"

namespace anetrain {
namespace {

using namespace fmt_test;
const std::string kV0 = kAssets + "/llama2c/stories260K.bin";
const std::string kQ80 = kAssets + "/llama2c/stories260K_q80.bin";

TEST(Llama2cV2, Q80IsWithinHalfAStepOfTheFp32Weights) {
  auto ref = load_llama2c(kV0);
  auto q = load_llama2c(kQ80);
  expect_same_config(q->cfg, ref->cfg);
  ASSERT_TRUE(q->cfg.tied_embeddings);
  const std::string raw = slurp(kQ80);
  int32_t gs;
  std::memcpy(&gs, raw.data() + 37, 4);
  ASSERT_EQ(gs, 32);
  for (const ParamSpec& s : ref->table.specs()) {
    const float* a = ref->param(s);
    const float* b = q->param(s);
    if (!s.is_matrix()) {  // norms stay fp32
      for (size_t i = 0; i < s.numel(); ++i) ASSERT_EQ(a[i], b[i]) << s.name;
      continue;
    }
    for (size_t g = 0; g < s.numel() / 32; ++g) {
      float wmax = 0;
      for (size_t j = 0; j < 32; ++j) wmax = std::max(wmax, std::fabs(a[g * 32 + j]));
      const float scale = wmax / 127.0f;
      for (size_t j = g * 32; j < g * 32 + 32; ++j)
        ASSERT_LE(std::fabs(a[j] - b[j]), scale / 2 * (1 + 1e-5f) + 1e-12f) << s.name << " element " << j;
    }
  }
}

TEST(Llama2cV2, ScalesFollowEachLayersInt8Block) {
  // Layer 0 of wq starts right after the embedding's int8 block and scales; its scales follow its
  // own 64·64 int8 values and equal max|w|/127 of the fp32 weights.
  auto ref = load_llama2c(kV0);
  const std::string raw = slurp(kQ80);
  const size_t norms = (2 * 5 * 64 + 64) * 4, emb = 512 * 64;
  const size_t wq0 = 256 + norms + emb + emb / 32 * 4;
  const float* w = ref->w.layers[0].wq;
  for (size_t g = 0; g < 64 * 64 / 32; ++g) {
    float s, wmax = 0;
    std::memcpy(&s, raw.data() + wq0 + 64 * 64 + 4 * g, 4);
    for (size_t j = 0; j < 32; ++j) wmax = std::max(wmax, std::fabs(w[g * 32 + j]));
    ASSERT_EQ(s, wmax / 127.0f) << "group " << g;
  }
}

TEST(Llama2cWrite, V0RewritesStoriesByteForByteOutsideTheRopeTables) {
  fs::path dir = scratch("l2c_v0");
  auto m = load_llama2c(kV0);
  save_llama2c(*m, (dir / "out.bin").string(), 0);
  const std::string a = slurp(kV0), b = slurp(dir / "out.bin");
  ASSERT_EQ(a.size(), b.size());
  const size_t rope_begin = 28 + 260032 * 4, rope_end = rope_begin + 2 * 512 * 4 * 4;
  EXPECT_EQ(a.substr(0, rope_begin), b.substr(0, rope_begin));
  // The tables are ignored by run.c; ours come from libm rather than torch, so allow an ulp or two.
  for (size_t i = rope_begin; i < rope_end; i += 4) {
    float x, y;
    std::memcpy(&x, a.data() + i, 4);
    std::memcpy(&y, b.data() + i, 4);
    ASSERT_NEAR(x, y, 1e-6f) << "byte " << i;
  }
  fs::remove_all(dir);
}

TEST(Llama2cWrite, V0AndV1RoundTripBitForBit) {
  fs::path dir = scratch("l2c_rt");
  for (bool tied : {true, false}) {
    auto m = random_model(tiny_llama(tied), 7);
    for (int v : {0, 1}) {
      const std::string p = (dir / ("m" + std::to_string(v) + ".bin")).string();
      save_llama2c(*m, p, v);
      auto back = load_llama2c(p);
      EXPECT_EQ(back->cfg.tied_embeddings, tied);
      EXPECT_EQ(back->params, m->params) << "version " << v << " tied " << tied;
    }
    // v1's header: magic, version, flag byte, 256 bytes before the first float.
    const std::string h = slurp(dir / "m1.bin");
    EXPECT_EQ(h.substr(0, 4), "24ka");
    EXPECT_EQ(h[36], tied ? 1 : 0);
    EXPECT_EQ(h.size(), 256 + m->table.total() * 4);
  }
  fs::remove_all(dir);
}

TEST(Llama2cWrite, HalfLayoutIsPermutedToInterleaved) {
  fs::path dir = scratch("l2c_half");
  auto m = random_model(tiny_llama(true), 3);
  auto half = random_model(tiny_llama(true), 3);
  permute_rope_to_half(*half);
  save_llama2c(*half, (dir / "h.bin").string(), 1);
  auto back = load_llama2c((dir / "h.bin").string());
  EXPECT_EQ(back->cfg.rope_style, RopeStyle::interleaved);
  EXPECT_EQ(back->params, m->params);
  fs::remove_all(dir);
}

TEST(Llama2cWrite, RefusesWhatTheFormatCannotSay) {
  fs::path dir = scratch("l2c_refuse");
  const std::string p = (dir / "x.bin").string();
  auto qwen = random_model(tiny_qwen3(), 1);
  expect_error([&] { save_llama2c(*qwen, p, 0); }, "head_dim 8");
  ModelConfig c = tiny_llama(true);
  c.qk_norm = true;
  expect_error([&] { save_llama2c(*random_model(c, 1), p, 1); }, "QK-norm");
  c = tiny_llama(true);
  c.rope_theta = 500000;
  expect_error([&] { save_llama2c(*random_model(c, 1), p, 0); }, "rope_theta");
  c = tiny_llama(true);
  c.norm_eps = 1e-6;
  expect_error([&] { save_llama2c(*random_model(c, 1), p, 1); }, "norm_eps");
  c = tiny_llama(true);
  c.residual_scale = 0.5;
  expect_error([&] { save_llama2c(*random_model(c, 1), p, 0); }, "residual_scale");
  expect_error([&] { save_llama2c(*random_model(tiny_llama(true), 1), p, 2); }, "cannot be written");
  EXPECT_FALSE(fs::exists(p));  // refused before any file appeared
  fs::remove_all(dir);
}

TEST(Llama2cRead, MalformedAk42HeadersAreErrors) {
  fs::path dir = scratch("l2c_bad");
  const std::string good = slurp(kQ80);
  auto patched = [&](size_t off, int32_t v) {
    std::string s = good;
    std::memcpy(s.data() + off, &v, 4);
    spit(dir / "x.bin", s);
    return (dir / "x.bin").string();
  };
  expect_error([&] { load_llama2c(patched(4, 3)); }, "version 3");
  expect_error([&] { load_llama2c(patched(37, 0)); }, "group_size 0");
  expect_error([&] { load_llama2c(patched(37, 48)); }, "does not divide");
  expect_error([&] { load_llama2c(patched(8 + 8, 0x7fffffff)); }, "not a llama2.c");  // n_layers
  expect_error([&] { load_llama2c(patched(8 + 20, 600)); }, "truncated");        // vocab 600
  std::string s = good;
  s[36] = 7;
  spit(dir / "x.bin", s);
  expect_error([&] { load_llama2c((dir / "x.bin").string()); }, "shared_classifier");
  spit(dir / "x.bin", good + "xx");
  expect_error([&] { load_llama2c((dir / "x.bin").string()); }, "trailing");
  for (size_t cut : {size_t(0), size_t(3), size_t(100), size_t(255), size_t(256), size_t(3000), good.size() - 1}) {
    spit(dir / "x.bin", good.substr(0, cut));
    EXPECT_THROW(load_llama2c((dir / "x.bin").string()), Error) << "cut at " << cut;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anetrain
