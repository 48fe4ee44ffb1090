// cpu-bf16 overrides block stages only to write each bf16 operand once, in the pass that produces
// it, instead of converting it before every product: the same roundings of the same values. So
// its stages must equal its own composition of ops (the base class's default, run on the same
// backend object) bit for bit — with weights inside the arena (read from the bf16 copy) and
// outside it (converted per call), at odd and real shapes.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "contract/registry.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

// A weight version no Model in this process will have (Model::touch counts up from 1).
constexpr uint64_t kArenaVersion = uint64_t(1) << 62;

struct Shape {
  const char* name;
  int N, D, F;
};
const Shape kShapes[] = {{"odd", 7, 33, 29}, {"stories15m", 64, 288, 768}, {"qwen3_0_6b", 16, 1024, 3072}};

// Exact equality, naming the first differing element.
::testing::AssertionResult same_bits(const std::string& what, const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << what << ": sizes differ";
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0)
      return ::testing::AssertionFailure() << what << " differs at " << i << ": " << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

TEST(CpuBf16Stages, FfnBlockEqualsItsComposition) {
  for (const Shape& sh : kShapes)
    for (bool in_arena : {true, false}) {
      SCOPED_TRACE(std::string(sh.name) + (in_arena ? " weights in the arena" : " loose weights"));
      const int N = sh.N, D = sh.D, F = sh.F;
      const BlockDims d{1, N, D, 2, 1, 4, F, 1e-5f, 0.7f, 1e4f, RopeStyle::interleaved, false};
      const size_t DF = size_t(D) * F;
      // gain, gate, up, down in one arena (as a model's weights are) with their gradients.
      std::vector<float> arena = random_vec(size_t(D) + 3 * DF, 11, -0.05f, 0.05f);
      for (int i = 0; i < D; ++i) arena[size_t(i)] = 0.5f + 0.01f * float(i % 50);
      std::vector<float> loose = arena;
      const std::vector<float> x = random_vec(size_t(N) * D, 12), dout = random_vec(size_t(N) * D, 13);
      std::vector<float> outs[2], dxs[2], grads[2];
      for (int fused = 0; fused < 2; ++fused) {
        auto be = make_backend("cpu-bf16");
        float* wbase = in_arena ? arena.data() : loose.data();
        be->sync_weights({arena.data(), arena.size(), kArenaVersion});
        LayerTensors w{}, g{};
        grads[fused] = random_vec(arena.size(), 14);  // non-zero: the stage accumulates
        w.ffn_norm = wbase, w.w_gate = wbase + D, w.w_up = wbase + D + DF, w.w_down = wbase + D + 2 * DF;
        float* gb = grads[fused].data();
        g.ffn_norm = gb, g.w_gate = gb + D, g.w_up = gb + D + DF, g.w_down = gb + D + 2 * DF;
        std::vector<float> xn(size_t(N) * D), rstd(N), gg(size_t(N) * F), u(size_t(N) * F), h(size_t(N) * F),
            f(size_t(N) * D), dh(size_t(N) * F), dg(size_t(N) * F), du(size_t(N) * F), dxn(size_t(N) * D),
            dres(size_t(N) * D);
        FfnSaved s{xn.data(), rstd.data(), gg.data(), u.data(), h.data(), f.data()};
        FfnScratch k{dh.data(), dg.data(), du.data(), dxn.data(), dres.data()};
        outs[fused].resize(size_t(N) * D);
        dxs[fused].resize(size_t(N) * D);
        if (fused) {
          be->ffn_block_fwd(d, w, x.data(), outs[fused].data(), s);
          be->ffn_block_bwd(d, w, g, x.data(), s, dout.data(), dxs[fused].data(), k);
        } else {
          be->Backend::ffn_block_fwd(d, w, x.data(), outs[fused].data(), s);
          be->Backend::ffn_block_bwd(d, w, g, x.data(), s, dout.data(), dxs[fused].data(), k);
        }
      }
      EXPECT_TRUE(same_bits("out", outs[1], outs[0]));
      EXPECT_TRUE(same_bits("dx", dxs[1], dxs[0]));
      EXPECT_TRUE(same_bits("parameter gradients", grads[1], grads[0]));
    }
}

struct AttnCase {
  const char* name;
  int B, T, D, Hq, Hkv, hd;
  bool qk_norm;
  RopeStyle rope;
};
const AttnCase kAttnCases[] = {
    {"odd_gqa3_qknorm", 2, 5, 36, 6, 2, 6, true, RopeStyle::half},
    {"stories15m", 1, 64, 288, 6, 6, 48, false, RopeStyle::interleaved},
    {"qwen3_0_6b", 1, 16, 1024, 16, 8, 128, true, RopeStyle::half},
};

TEST(CpuBf16Stages, AttentionBlockEqualsItsComposition) {
  int flash_cases = 0;
  for (const AttnCase& c : kAttnCases)
    for (bool flash : {false, true})
      for (bool in_arena : {true, false}) {
        SCOPED_TRACE(std::string(c.name) + (flash ? " flash" : " probabilities") +
                     (in_arena ? " weights in the arena" : " loose weights"));
        const BlockDims d{c.B, c.T, c.D, c.Hq, c.Hkv, c.hd, 8, 1e-6f, 0.7f, 1e4f, c.rope, c.qk_norm};
        const size_t N = size_t(d.N()), D = c.D, qd = size_t(c.Hq) * c.hd, kvd = size_t(c.Hkv) * c.hd;
        // attn_norm, q_norm, k_norm, wq, wk, wv, wo in one arena.
        const size_t sizes[7] = {D, size_t(c.hd), size_t(c.hd), qd * D, kvd * D, kvd * D, D * qd};
        size_t total = 0, at[7];
        for (int i = 0; i < 7; ++i) at[i] = total, total += sizes[i];
        std::vector<float> arena = random_vec(total, 21, -0.06f, 0.06f);
        for (size_t i = 0; i < D + 2 * size_t(c.hd); ++i) arena[i] = 0.6f + 0.01f * float(i % 40);
        std::vector<float> loose = arena;
        const std::vector<float> x = random_vec(N * D, 22), dout = random_vec(N * D, 23);
        std::vector<float> outs[2], dxs[2], grads[2];
        for (int fused = 0; fused < 2; ++fused) {
          auto be = make_backend("cpu-bf16");
          if (flash && !be->attention_flash(AttnShape{c.B, c.T, c.Hq, c.Hkv, c.hd})) break;  // short T: none
          flash_cases += flash && fused;
          be->sync_weights({arena.data(), arena.size(), kArenaVersion});
          float* wb = in_arena ? arena.data() : loose.data();
          grads[fused] = random_vec(total, 24);
          float* gb = grads[fused].data();
          LayerTensors w{}, g{};
          float* LayerTensors::*fields[7] = {&LayerTensors::attn_norm, &LayerTensors::q_norm, &LayerTensors::k_norm,
                                             &LayerTensors::wq,        &LayerTensors::wk,     &LayerTensors::wv,
                                             &LayerTensors::wo};
          for (int i = 0; i < 7; ++i) w.*fields[i] = wb + at[i], g.*fields[i] = gb + at[i];
          const size_t P = size_t(c.B) * c.Hq * c.T * c.T;
          std::vector<float> xn(N * D), rstd(N), q_raw(N * qd), k_raw(N * kvd), q_rstd(N * c.Hq), k_rstd(N * c.Hkv),
              q(N * qd), k(N * kvd), v(N * kvd), probs(flash ? 0 : P), attn(N * qd), o(N * D),
              lse(flash ? size_t(c.B) * c.Hq * c.T : 0);
          AttentionSaved s{xn.data(), rstd.data(), q_raw.data(), k_raw.data(), q_rstd.data(), k_rstd.data(),
                           q.data(),  k.data(),    v.data(),     flash ? nullptr : probs.data(),
                           attn.data(), o.data(),  flash ? lse.data() : nullptr};
          std::vector<float> dattn(N * qd), dq(N * qd), dk(N * kvd), dv(N * kvd), dq_raw(N * qd), dk_raw(N * kvd),
              dprobs(flash ? 0 : P), dxn(N * D), dres(N * D);
          AttentionScratch sc{dattn.data(), dq.data(), dk.data(), dv.data(), dq_raw.data(), dk_raw.data(),
                              flash ? nullptr : dprobs.data(), dxn.data(), dres.data()};
          outs[fused].resize(N * D);
          dxs[fused].resize(N * D);
          if (fused) {
            be->attention_block_fwd(d, w, x.data(), outs[fused].data(), s);
            be->attention_block_bwd(d, w, g, x.data(), s, dout.data(), dxs[fused].data(), sc);
          } else {
            be->Backend::attention_block_fwd(d, w, x.data(), outs[fused].data(), s);
            be->Backend::attention_block_bwd(d, w, g, x.data(), s, dout.data(), dxs[fused].data(), sc);
          }
        }
        if (outs[1].empty()) continue;
        EXPECT_TRUE(same_bits("out", outs[1], outs[0]));
        EXPECT_TRUE(same_bits("dx", dxs[1], dxs[0]));
        EXPECT_TRUE(same_bits("parameter gradients", grads[1], grads[0]));
      }
  EXPECT_GE(flash_cases, 2) << "the flash form ran on too few cases";
}

}  // namespace
}  // namespace anetrain::test
