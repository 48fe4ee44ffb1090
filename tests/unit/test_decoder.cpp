// KV-cache decoding must be the training forward pass, just incremental: for MHA and for
// GQA + QK-norm + half RoPE, the logits the decoder returns at every position (prompt fed in
// several chunks, then one token at a time past 64 tokens) equal those of one full forward pass
// over the whole sequence, and greedy decoding picks their argmax.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "core/error.h"
#include "gen/decoder.h"
#include "model/transformer.h"

namespace anetrain {
namespace {

ModelConfig make_config(bool qwen_like) {
  ModelConfig c;
  c.dim = 48;
  c.n_layers = 2;
  c.hidden_dim = 80;
  c.vocab_size = 97;
  c.max_seq_len = 160;
  if (qwen_like) {
    c.arch = "qwen3";
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 16;  // ≠ dim / heads
    c.qk_norm = true;
    c.rope_style = RopeStyle::half;
    c.rope_theta = 1e6;
    c.norm_eps = 1e-6;
  } else {
    c.n_heads = 6;
    c.n_kv_heads = 6;
    c.head_dim = 8;
  }
  c.validate();
  return c;
}

void check_incremental_equals_full(Backend& be, bool qwen_like) {
  Model m(make_config(qwen_like));
  init_random(m, qwen_like ? 3 : 4);
  // Sharper weights than the init so logits are far from uniform and argmax is meaningful.
  for (float& w : m.params) w *= 3.0f;
  const int prompt_len = 23, gen = 70;  // the prompt spans chunks of 8; generation passes 64 tokens
  std::vector<int32_t> seq;
  for (int i = 0; i < prompt_len; ++i) seq.push_back((i * 37 + 11) % m.cfg.vocab_size);
  Decoder dec(be, m, 128, /*max_chunk=*/8);
  std::vector<std::vector<float>> step_logits;
  const float* logits = dec.feed(seq.data(), prompt_len);
  for (int s = 0; s < gen; ++s) {
    step_logits.emplace_back(logits, logits + m.cfg.vocab_size);
    const int32_t next = int32_t(std::max_element(logits, logits + m.cfg.vocab_size) - logits);
    seq.push_back(next);
    logits = dec.feed(next);
  }
  ASSERT_EQ(dec.position(), prompt_len + gen);

  const int T = int(seq.size()) - 1;
  Workspace ws(m.cfg, 1, T);
  std::copy(seq.begin(), seq.end() - 1, ws.inputs.begin());
  std::copy(seq.begin() + 1, seq.end(), ws.targets.begin());
  forward(be, m, ws);
  for (int s = 0; s < gen; ++s) {
    const float* full = ws.logits + size_t(prompt_len - 1 + s) * m.cfg.vocab_size;
    float scale = 0;
    for (int v = 0; v < m.cfg.vocab_size; ++v) scale = std::max(scale, std::abs(full[v]));
    for (int v = 0; v < m.cfg.vocab_size; ++v)
      ASSERT_NEAR(step_logits[s][v], full[v], 1e-4f * scale) << "generated token " << s << " vocab " << v;
    ASSERT_EQ(seq[prompt_len + s], int32_t(std::max_element(full, full + m.cfg.vocab_size) - full)) << "step " << s;
  }
  // The generated text is not degenerate (a constant stream would hide position bugs).
  std::vector<int32_t> gen_ids(seq.begin() + prompt_len, seq.end());
  std::sort(gen_ids.begin(), gen_ids.end());
  EXPECT_GT(std::unique(gen_ids.begin(), gen_ids.end()) - gen_ids.begin(), 5);
}

TEST(Decoder, IncrementalEqualsFullForwardMhaCpu) {
  CpuBackend be;
  check_incremental_equals_full(be, false);
}
TEST(Decoder, IncrementalEqualsFullForwardGqaQkNormCpu) {
  CpuBackend be;
  check_incremental_equals_full(be, true);
}
TEST(Decoder, IncrementalEqualsFullForwardGqaQkNormRef) {
  RefBackend be;
  check_incremental_equals_full(be, true);
}

// A prompt's chunk over the cache (one product per head for all its queries) and a decoded
// token (one row per head) against the reference: GQA, chunks at the start and after a cached
// prefix, a width off every SIMD step. fp32 sums over ≤ 40 positions stay ~1e-6 of the output.
TEST(Decoder, CachedAttentionChunksEqualReference) {
  const int Hq = 6, Hkv = 2, hd = 20;
  for (auto [pos0, Tn] : {std::pair{0, 1}, {0, 7}, {9, 1}, {9, 17}, {23, 5}}) {
    SCOPED_TRACE("pos0 " + std::to_string(pos0) + " Tn " + std::to_string(Tn));
    const int ctx = pos0 + Tn;
    std::vector<float> q(size_t(Tn) * Hq * hd), k(size_t(ctx) * Hkv * hd), v(k.size());
    for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(0.37f * float(i)) * 2.0f;
    for (size_t i = 0; i < k.size(); ++i) k[i] = std::cos(0.23f * float(i)), v[i] = std::sin(0.11f * float(i) + 1.0f);
    std::vector<float> got(q.size(), NAN), want(q.size(), NAN), scores(size_t(Hq) * Tn * ctx);
    CpuBackend cpu;
    RefBackend ref;
    cpu.attention_cached_fwd(q.data(), k.data(), v.data(), got.data(), scores.data(), pos0, Tn, Hq, Hkv, hd);
    ref.attention_cached_fwd(q.data(), k.data(), v.data(), want.data(), scores.data(), pos0, Tn, Hq, Hkv, hd);
    for (size_t i = 0; i < q.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f) << "at " << i;
  }
}

TEST(Decoder, RefusesToOverflowTheContext) {
  Model m(make_config(false));
  init_random(m, 1);
  CpuBackend be;
  Decoder dec(be, m, 16);
  std::vector<int32_t> ids(16, 5);
  dec.feed(ids.data(), 16);
  EXPECT_THROW(dec.feed(5), Error);
}

}  // namespace
}  // namespace anetrain
