// GGUF against real files and through round trips: the legacy-v1 stories260K GGUF holds exactly
// stories260K.bin's weights and tok512's vocabulary; the v3 F16 random model loads and runs; and
// v0 ↔ v1 ↔ safetensors ↔ GGUF, and a Qwen3-shaped model hf ↔ gguf, preserve every bit.
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "format_test_util.h"
#include "formats/gguf.h"
#include "formats/gguf_vocab.h"
#include "formats/hf.h"
#include "formats/llama2c.h"

namespace anetrain {
namespace {

using namespace fmt_test;
const std::string kStoriesBin = kAssets + "/llama2c/stories260K.bin";
const std::string kStoriesGguf = kAssets + "/gguf/tinyllamas-stories-260k-f32.gguf";
const std::string kRandomGguf = kAssets + "/gguf/llama-2-tiny-random.gguf";
const std::string kTok512 = kAssets + "/llama2c/tok512.bin";

TEST(GgufRead, LegacyV1StoriesMatchesTheLlama2cBinBitForBit) {
  GgufReader r(kStoriesGguf);
  EXPECT_EQ(r.version(), 1u);
  EXPECT_EQ(r.tensors().size(), 48u);
  EXPECT_EQ(r.get_str("llama.tensor_data_layout"), "Meta AI original pth");
  auto g = load_gguf(kStoriesGguf);
  auto b = load_llama2c(kStoriesBin);
  // Both hold Meta's interleaved layout, and output.weight is a byte copy of token_embd, so the
  // loader ties them: the two models are the same table, float for float.
  expect_same_config(g->cfg, b->cfg);
  EXPECT_EQ(g->cfg.rope_style, RopeStyle::interleaved);
  EXPECT_EQ(g->cfg.norm_eps, 1e-5);  // stored as f32, read back as its shortest decimal
  for (const ParamSpec& s : b->table.specs())
    ASSERT_EQ(0, std::memcmp(g->param(s), b->param(s), s.numel() * 4)) << s.name;
}

TEST(GgufRead, StoriesTokenizerIsTok512) {
  GgufTokenizer t = gguf_tokenizer(GgufReader(kStoriesGguf));
  EXPECT_EQ(t.model, "llama");
  ASSERT_EQ(t.tokens.size(), 512u);
  EXPECT_EQ(t.bos_id, 1);
  EXPECT_EQ(t.eos_id, 2);
  fs::path dir = scratch("gguf_tok");
  write_gguf_tokenizer_as_llama2c(t, (dir / "tok.bin").string());
  EXPECT_EQ(slurp(dir / "tok.bin"), slurp(kTok512));  // byte for byte what llama2.c's exporter wrote
  GgufTokenizer back = gguf_tokenizer_from_file(kTok512, 512);
  EXPECT_EQ(back.tokens, t.tokens);
  EXPECT_EQ(back.scores, t.scores);
  EXPECT_EQ(back.token_type, t.token_type);
  fs::remove_all(dir);
}

TEST(GgufRead, TinyRandomF16LoadsAndRuns) {
  GgufReader r(kRandomGguf);
  EXPECT_EQ(r.version(), 3u);
  EXPECT_EQ(r.tensor("blk.0.attn_q.weight")->type, GgmlType::f16);
  EXPECT_EQ(r.tensor("blk.0.attn_norm.weight")->type, GgmlType::f32);
  GgufTokenizer tok;
  auto m = load_gguf(kRandomGguf, &tok);
  EXPECT_EQ(m->cfg.vocab_size, 32000);
  EXPECT_EQ(m->cfg.dim, 8);
  EXPECT_FALSE(m->cfg.tied_embeddings);
  EXPECT_EQ(tok.tokens.size(), 32000u);
  EXPECT_EQ(tok.tokens[29871], "\xE2\x96\x81");
  // One F16 value decoded by hand from the file.
  const GgufTensorInfo* q = r.tensor("blk.0.attn_q.weight");
  uint16_t h;
  std::memcpy(&h, r.raw(*q) + 2 * 5, 2);
  EXPECT_EQ(m->w.layers[0].wq[5], f16_to_f32(h));
  for (float v : logits(*m, {1, 15043, 3186, 29871, 2}))
    ASSERT_TRUE(std::isfinite(v));
  // Version 2 has version 3's layout (v3 only added big-endian files), so the same bytes load.
  fs::path dir = scratch("gguf_v2");
  std::string bytes = slurp(kRandomGguf);
  bytes[4] = 2;
  spit(dir / "v2.gguf", bytes);
  EXPECT_EQ(load_gguf((dir / "v2.gguf").string())->params, m->params);
  fs::remove_all(dir);
}

TEST(GgufRoundTrip, V0V1SafetensorsGgufPreserveEveryBit) {
  fs::path dir = scratch("gguf_chain");
  auto orig = load_llama2c(kStoriesBin);
  save_llama2c(*orig, (dir / "v1.bin").string(), 1);
  auto v1 = load_llama2c((dir / "v1.bin").string());
  save_hf_folder(*v1, (dir / "hf").string(), DType::f32);
  auto hf = load_hf_folder((dir / "hf").string());  // half layout now
  save_gguf(*hf, (dir / "m.gguf").string(), DType::f32);
  auto gg = load_gguf((dir / "m.gguf").string());  // llama GGUF: interleaved again
  EXPECT_EQ(gg->cfg.rope_style, RopeStyle::interleaved);
  expect_same_config(gg->cfg, orig->cfg);
  EXPECT_EQ(gg->params, orig->params);
  save_llama2c(*gg, (dir / "v0.bin").string(), 0);
  save_llama2c(*orig, (dir / "v0_direct.bin").string(), 0);
  EXPECT_EQ(slurp(dir / "v0.bin"), slurp(dir / "v0_direct.bin"));
  // And the other way: GGUF → safetensors → GGUF gives the same file.
  save_hf_folder(*gg, (dir / "hf2").string(), DType::f32);
  save_gguf(*load_hf_folder((dir / "hf2").string()), (dir / "m2.gguf").string(), DType::f32);
  EXPECT_EQ(slurp(dir / "m.gguf"), slurp(dir / "m2.gguf"));
  fs::remove_all(dir);
}

TEST(GgufRoundTrip, HalfPrecisionRoundsMatricesOnly) {
  fs::path dir = scratch("gguf_half");
  auto m = random_model(tiny_llama(false), 11);
  for (DType t : {DType::f16, DType::bf16}) {
    const std::string p = (dir / "m.gguf").string();
    save_gguf(*m, p, t);
    GgufReader r(p);
    EXPECT_EQ(r.tensor("output.weight")->type, t == DType::f16 ? GgmlType::f16 : GgmlType::bf16);
    EXPECT_EQ(r.tensor("output_norm.weight")->type, GgmlType::f32);
    auto back = load_gguf(p);
    for (const ParamSpec& s : m->table.specs())
      for (size_t i = 0; i < s.numel(); ++i) {
        const float x = m->param(s)[i];
        const float want = !s.is_matrix() ? x : t == DType::f16 ? f16_to_f32(f32_to_f16(x)) : bf16_to_f32(f32_to_bf16(x));
        ASSERT_EQ(back->param(s)[i], want) << s.name << "[" << i << "] " << dtype_name(t);
      }
    // Already-rounded values survive a second trip unchanged.
    save_gguf(*back, p, t);
    EXPECT_EQ(load_gguf(p)->params, back->params);
  }
  fs::remove_all(dir);
}

TEST(GgufRoundTrip, Qwen3ShapedModelHfGgufBitForBitWithIdenticalLogits) {
  fs::path dir = scratch("gguf_qwen");
  auto m = random_model(tiny_qwen3(), 5);
  save_hf_folder(*m, (dir / "hf").string(), DType::f32);
  auto hf = load_hf_folder((dir / "hf").string());
  save_gguf(*hf, (dir / "q.gguf").string(), DType::f32);
  GgufReader r((dir / "q.gguf").string());
  EXPECT_EQ(r.get_str("general.architecture"), "qwen3");
  EXPECT_EQ(r.get_int("qwen3.attention.key_length", 0, 1 << 20), 8);
  EXPECT_NE(r.tensor("blk.1.attn_k_norm.weight"), nullptr);
  EXPECT_EQ(r.tensor("output.weight"), nullptr);  // tied
  auto gg = load_gguf((dir / "q.gguf").string());
  expect_same_config(gg->cfg, m->cfg);
  EXPECT_EQ(gg->cfg.rope_style, RopeStyle::half);  // NEOX: no permutation for qwen3
  EXPECT_EQ(gg->params, m->params);
  save_hf_folder(*gg, (dir / "hf2").string(), DType::f32);
  EXPECT_EQ(load_hf_folder((dir / "hf2").string())->params, m->params);
  const std::vector<int32_t> ids = {1, 7, 39, 2, 0, 21, 13};
  const std::vector<float> a = logits(*m, ids);
  EXPECT_EQ(logits(*hf, ids), a);
  EXPECT_EQ(logits(*gg, ids), a);
  fs::remove_all(dir);
}

TEST(GgufRoundTrip, TokenizerAndMetadataSurvive) {
  fs::path dir = scratch("gguf_tokrt");
  GgufTokenizer tok;
  auto m = load_gguf(kRandomGguf, &tok);
  save_gguf(*m, (dir / "r.gguf").string(), DType::f16, &tok, "tiny");
  GgufTokenizer back;
  auto m2 = load_gguf((dir / "r.gguf").string(), &back);
  EXPECT_EQ(m2->params, m->params);  // F16 in, F16 out: exact
  EXPECT_EQ(back.tokens, tok.tokens);
  EXPECT_EQ(back.scores, tok.scores);
  EXPECT_EQ(back.token_type, tok.token_type);
  EXPECT_EQ(back.unk_id, 0);
  EXPECT_EQ(GgufReader((dir / "r.gguf").string()).get_str("general.name"), "tiny");
  // A short vocabulary is padded to one token per embedding row, as llama.cpp expects.
  auto small = random_model(tiny_llama(true), 2);
  GgufTokenizer few;
  few.model = "llama";
  few.tokens = {"<unk>", "<s>", "</s>"};
  few.scores = {0, 0, 0};
  save_gguf(*small, (dir / "s.gguf").string(), DType::f32, &few);
  GgufTokenizer padded = gguf_tokenizer(GgufReader((dir / "s.gguf").string()));
  ASSERT_EQ(padded.tokens.size(), 32u);
  EXPECT_EQ(padded.tokens[31], "[PAD31]");
  fs::remove_all(dir);
}

TEST(GgufRead, DequantizesQ8_0) {
  // One 2×32 Q8_0 tensor: each block is an f16 scale then 32 int8 values.
  GgufBytes g;
  g.u32(0x46554747).u32(3).u64(1).u64(0);
  g.str("w").u32(2).u64(32).u64(2).u32(8).u64(0);
  g.pad(32);
  for (int blk = 0; blk < 2; ++blk) {
    g.put<uint16_t>(f32_to_f16(blk ? 0.5f : 0.25f));
    for (int j = 0; j < 32; ++j) g.put<int8_t>(int8_t(j - 16));
  }
  fs::path dir = scratch("gguf_q8");
  spit(dir / "q.gguf", g.b);
  GgufReader r((dir / "q.gguf").string());
  std::vector<float> out(64);
  r.read_f32(*r.tensor("w"), {2, 32}, out.data());
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(out[j], float(j - 16) * 0.25f);
    EXPECT_EQ(out[32 + j], float(j - 16) * 0.5f);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anetrain
