// File formats: half-precision conversions, safetensors round trips and validation, the
// llama2.c v0 reader on the real stories260K.bin, and the claim that llama2.c's interleaved RoPE
// layout and HF's half layout are the same model once q/k rows are permuted.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "backends/ref/ref_backend.h"
#include "core/dtype.h"
#include "core/error.h"
#include "formats/hf.h"
#include "formats/llama2c.h"
#include "formats/safetensors.h"
#include "model/transformer.h"

namespace anetrain {
namespace {

namespace fs = std::filesystem;
const std::string kStories = std::string(ANETRAIN_ASSETS) + "/llama2c/stories260K.bin";

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("anetrain_test_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p;
}

TEST(DType, F16KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);           // rounds past the largest finite half
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // exact tie → even (zero)
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // tie 1.5 ulp → even (2)
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie between 1 and 1+2^-10 → even
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
}

TEST(DType, F16EveryPatternRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << "pattern " << h;
  }
}

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  float tie;  // exactly halfway between bf16 0x3f80 and 0x3f81
  uint32_t bits = 0x3f808000u;
  std::memcpy(&tie, &bits, 4);
  EXPECT_EQ(f32_to_bf16(tie), 0x3f80);
  bits = 0x3f818000u;
  std::memcpy(&tie, &bits, 4);
  EXPECT_EQ(f32_to_bf16(tie), 0x3f82);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
}

TEST(Safetensors, RoundTripsEveryDtype) {
  fs::path dir = temp_dir("st");
  std::vector<float> a = {1.0f, -2.5f, 3.14159f, 1e-3f, 65504.0f, -0.0f};
  float scalar = 7.25f;
  for (DType t : {DType::f32, DType::f16, DType::bf16}) {
    std::string path = (dir / ("t_" + dtype_name(t) + ".safetensors")).string();
    write_safetensors(path, {{"a", {2, 3}, a.data()}, {"s", {}, &scalar}}, t);
    SafetensorsReader r(path);
    EXPECT_EQ(r.info("a").dtype, t);
    EXPECT_EQ(r.info("s").shape.size(), 0u);
    auto back = r.read_f32("a");
    for (size_t i = 0; i < a.size(); ++i) {
      float want = t == DType::f32 ? a[i] : t == DType::f16 ? f16_to_f32(f32_to_f16(a[i])) : bf16_to_f32(f32_to_bf16(a[i]));
      EXPECT_EQ(back[i], want) << dtype_name(t) << " element " << i;
    }
    EXPECT_EQ(r.read_f32("s")[0], 7.25f);
    // Header padded so tensor data starts 8-byte aligned, as the reference writer does.
    uint64_t hlen;
    std::ifstream(path, std::ios::binary).read(reinterpret_cast<char*>(&hlen), 8);
    EXPECT_EQ(hlen % 8, 0u);
  }
  fs::remove_all(dir);
}

void write_raw_st(const std::string& path, const std::string& header, size_t data_bytes) {
  std::ofstream f(path, std::ios::binary);
  uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header << std::string(data_bytes, '\0');
}

void expect_error_containing(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    FAIL() << "expected an Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RejectsMalformedHeaders) {
  fs::path dir = temp_dir("stbad");
  std::string p = (dir / "x.safetensors").string();
  write_raw_st(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12);
  expect_error_containing([&] { SafetensorsReader r(p); }, "overlap");
  write_raw_st(p, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
  expect_error_containing([&] { SafetensorsReader r(p); }, "needs 12");
  write_raw_st(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8);
  expect_error_containing([&] { SafetensorsReader r(p); }, "begin > end");
  write_raw_st(p, R"([1,2,3])", 0);
  expect_error_containing([&] { SafetensorsReader r(p); }, "not a JSON object");
  write_raw_st(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8);
  SafetensorsReader ok(p);
  std::vector<float> dst(4);
  expect_error_containing([&] { ok.read_f32("a", {4}, dst.data()); }, "expected [4]");
  fs::remove_all(dir);
}

TEST(Llama2c, ReadsStories260K) {
  auto m = load_llama2c(kStories);
  const ModelConfig& c = m->cfg;
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.rope_style, RopeStyle::interleaved);
  EXPECT_EQ(m->table.total(), 260032u);  // the README's count of stored weights
  // First and last stored floats land in the embedding and the final norm.
  MappedFile f(kStories);
  float first, final_norm_last;
  std::memcpy(&first, f.data() + 28, 4);
  EXPECT_EQ(m->w.embedding[0], first);
  std::memcpy(&final_norm_last, f.data() + 28 + 4 * (260032 - 1), 4);
  EXPECT_EQ(m->w.final_norm[63], final_norm_last);
}

// Loss, logits and gradients of one batch on the ref backend.
struct Pass {
  double loss;
  std::vector<float> logits, grads;
};
Pass run_pass(Model& m, const std::vector<int32_t>& ids) {
  RefBackend be;
  const int T = int(ids.size()) - 1;
  Workspace ws(m.cfg, 1, T);
  for (int t = 0; t < T; ++t) {
    ws.inputs[t] = ids[t];
    ws.targets[t] = ids[t + 1];
  }
  m.zero_grads();
  Pass p;
  p.loss = forward(be, m, ws);
  backward(be, m, ws);
  p.logits.assign(ws.logits, ws.logits + size_t(T) * m.cfg.vocab_size);
  p.grads.assign(m.grads.begin(), m.grads.end());
  return p;
}

TEST(RopeLayouts, InterleavedAndHalfAreTheSameModel) {
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 275, 259, 301, 431, 283, 265, 400, 417, 46};
  auto inter = load_llama2c(kStories);
  auto half = load_llama2c(kStories);
  permute_rope_to_half(*half);
  ASSERT_EQ(half->cfg.rope_style, RopeStyle::half);
  ASSERT_NE(inter->params, half->params);  // the permutation really moved rows
  Pass a = run_pass(*inter, ids);
  Pass b = run_pass(*half, ids);
  EXPECT_NEAR(a.loss, b.loss, 1e-6 * std::abs(a.loss));
  float scale = 0;
  for (float v : a.logits) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < a.logits.size(); ++i) ASSERT_NEAR(a.logits[i], b.logits[i], 1e-5f * scale) << i;
  // Gradients of the half model, permuted back, are the interleaved model's gradients.
  half->params.assign(b.grads.begin(), b.grads.end());
  permute_rope_to_interleaved(*half);
  float gscale = 0;
  for (float v : a.grads) gscale = std::max(gscale, std::abs(v));
  for (size_t i = 0; i < a.grads.size(); ++i) ASSERT_NEAR(a.grads[i], half->params[i], 1e-5f * gscale) << i;
}

TEST(RopeLayouts, PermutationRoundTripIsExact) {
  auto m = load_llama2c(kStories);
  const FloatArena orig = m->params;
  permute_rope_to_half(*m);
  permute_rope_to_interleaved(*m);
  EXPECT_EQ(m->params, orig);
}

TEST(HfFolder, SaveThenLoadGivesTheSameModel) {
  fs::path dir = temp_dir("hf");
  auto m = load_llama2c(kStories);
  save_hf_folder(*m, dir.string(), DType::f32);
  auto back = load_hf_folder(dir.string());
  EXPECT_EQ(back->cfg.rope_style, RopeStyle::half);
  EXPECT_EQ(back->cfg.vocab_size, 512);
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 275};
  Pass a = run_pass(*m, ids), b = run_pass(*back, ids);
  EXPECT_NEAR(a.loss, b.loss, 1e-6 * std::abs(a.loss));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anetrain
