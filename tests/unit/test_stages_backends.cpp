// The block stages (attention and FFN, forward and backward) of every backend except `ref`,
// against `ref`'s default composition of ops. Each backend's backward reads the saved buffers
// of its own forward, as in training, so a backend that fuses a stage and keeps different
// intermediates is still checked only on what the model sees: out, dx, parameter gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <tuple>

#include "core/error.h"
#include "contract/registry.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

// Same 1e-4-of-scale bound as the ops (see test_ops_backends.cpp): a stage is a short chain of
// ops, each adding its own ~sqrt(K)·eps drift; the norms and softmax inside are well-conditioned
// for these random inputs, so the chain stays an order of magnitude under the bound.
constexpr double kTol = 1e-4;
constexpr float kGarbage = -777.25f;

struct StageCase {
  const char* name;
  int B, T, D, F, Hq, Hkv, hd;
  bool qk_norm;
  RopeStyle rope;
  float alpha, theta, eps;
};
void PrintTo(const StageCase& c, std::ostream* os) { *os << c.name; }

const StageCase kCases[] = {
    {"gqa2_interleaved", 2, 5, 33, 31, 4, 2, 6, false, RopeStyle::interleaved, 0.7f, 1e4f, 1e-5f},
    {"gqa2_half_qknorm", 2, 5, 33, 31, 4, 2, 6, true, RopeStyle::half, 1.3f, 1e4f, 1e-5f},
    {"gqa3_half_qknorm", 1, 7, 37, 29, 6, 3, 10, true, RopeStyle::half, 0.5f, 1e4f, 1e-5f},
    {"mha_interleaved_qknorm", 2, 4, 24, 40, 3, 3, 10, true, RopeStyle::interleaved, 0.7f, 1e4f, 1e-5f},
    {"mha_half", 1, 6, 20, 18, 2, 2, 8, false, RopeStyle::half, 1.0f, 1e4f, 1e-5f},
    // No RoPE, as the seed system's static pipeline trained (BLZT version 2).
    {"mha_no_rope", 2, 5, 24, 36, 4, 4, 6, false, RopeStyle::none, 1.0f, 1e4f, 1e-5f},
    {"stories260k", 2, 8, 64, 172, 8, 4, 8, false, RopeStyle::interleaved, 1.0f, 1e4f, 1e-5f},
    {"stories110m", 1, 6, 768, 2048, 12, 12, 64, false, RopeStyle::interleaved, 1.0f, 1e4f, 1e-5f},
    {"qwen3_0_6b", 1, 4, 1024, 3072, 16, 8, 128, true, RopeStyle::half, 1.0f, 1e6f, 1e-6f},
};

// Whether the backend implements the flash form (the base class's default fails).
bool has_flash_attention(Backend& be) {
  std::vector<float> q(4, 0.5f), k(4, 0.25f), v(4, 1.0f), out(4), lse(1);
  try {
    be.attention_flash_fwd(q.data(), k.data(), v.data(), out.data(), lse.data(), AttnShape{1, 1, 1, 1, 4});
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Named guarded tensors; p(name, n) allocates on first use (or returns nullptr for n = 0, as
// the workspace does for the QK-norm buffers of a model without QK-norm).
struct Pool {
  std::map<std::string, Guarded> t;
  float* p(const std::string& name, size_t n, float fill = kGarbage) {
    if (n == 0) return nullptr;
    return t.emplace(name, Guarded(n, fill)).first->second.data();
  }
  float* rnd(const std::string& name, size_t n, uint64_t seed, float lo = -1, float hi = 1) {
    if (n == 0) return nullptr;
    return t.emplace(name, Guarded(random_vec(n, seed, lo, hi))).first->second.data();
  }
  void expect_intact(const std::string& who) const {
    for (const auto& [name, g] : t) EXPECT_TRUE(g.intact(who + " " + name));
  }
};

class StagesVsRef : public ::testing::TestWithParam<std::tuple<std::string, StageCase>> {
 protected:
  void SetUp() override {
    be = make_backend(std::get<0>(GetParam()));
    ref = make_backend("ref");
    const StageCase& c = std::get<1>(GetParam());
    d = BlockDims{c.B, c.T, c.D, c.Hq, c.Hkv, c.hd, c.F, c.eps, c.alpha, c.theta, c.rope, c.qk_norm};
  }
  std::string tag(const std::string& what) const {
    return be->name() + " " + what + " [" + std::get<1>(GetParam()).name + "]";
  }
  size_t N() const { return size_t(d.N()); }
  size_t qd() const { return size_t(d.Hq) * d.hd; }
  size_t kvd() const { return size_t(d.Hkv) * d.hd; }

  // Projections at ~1/sqrt(fan_in) so activations stay O(1) through the block; gains away from 1
  // so a backward that drops a gain factor is caught. The same seeds give identical weights and
  // identical non-zero starting gradients (checking += ) to both backends.
  LayerTensors attention_weights(Pool& w, bool grads) {
    const uint64_t s = grads ? 100 : 0;
    const float a = 1.0f / std::sqrt(float(d.D)), ao = 1.0f / std::sqrt(float(qd())), gl = grads ? -1.0f : 0.5f;
    LayerTensors L{};
    L.attn_norm = w.rnd("attn_norm", size_t(d.D), s + 1, gl, 1.5f);
    L.wq = w.rnd("wq", qd() * d.D, s + 2, -a, a);
    L.wk = w.rnd("wk", kvd() * d.D, s + 3, -a, a);
    L.wv = w.rnd("wv", kvd() * d.D, s + 4, -a, a);
    L.wo = w.rnd("wo", size_t(d.D) * qd(), s + 5, -ao, ao);
    L.q_norm = w.rnd("q_norm", d.qk_norm ? size_t(d.hd) : 0, s + 6, gl, 1.5f);
    L.k_norm = w.rnd("k_norm", d.qk_norm ? size_t(d.hd) : 0, s + 7, gl, 1.5f);
    return L;
  }
  LayerTensors ffn_weights(Pool& w, bool grads) {
    const uint64_t s = grads ? 200 : 10;
    const float a = 1.0f / std::sqrt(float(d.D)), af = 1.0f / std::sqrt(float(d.F));
    LayerTensors L{};
    L.ffn_norm = w.rnd("ffn_norm", size_t(d.D), s + 1, grads ? -1.0f : 0.5f, 1.5f);
    L.w_gate = w.rnd("w_gate", size_t(d.F) * d.D, s + 2, -a, a);
    L.w_up = w.rnd("w_up", size_t(d.F) * d.D, s + 3, -a, a);
    L.w_down = w.rnd("w_down", size_t(d.D) * d.F, s + 4, -af, af);
    return L;
  }

  // kTol for fp32 backends; an fp16 backend states its own bound (Backend::numerics).
  void compare(const Pool& got, const Pool& want, const std::vector<std::string>& names, double tol = -1) {
    if (tol < 0) tol = std::max(kTol, be->caps().numerics.stage_rtol);
    for (const auto& n : names) EXPECT_TRUE(all_close(tag(n), got.t.at(n), want.t.at(n), tol));
  }

  std::unique_ptr<Backend> be, ref;
  BlockDims d{};
};

TEST_P(StagesVsRef, AttentionBlock) {
  Pool w;
  const LayerTensors W = attention_weights(w, false);
  const Guarded x = random_vec(N() * d.D, 31), dout = random_vec(N() * d.D, 32);
  const size_t P = size_t(d.B) * d.Hq * d.T * d.T, qn = d.qk_norm ? 1 : 0;
  // 0: ref's default composition; 1: the backend, keeping probabilities; 2: the backend in its
  // flash form (saves lse only), when it has one.
  const bool flash = has_flash_attention(*be);
  Pool io[3], saved[3], scratch[3], grads[3];
  for (int i = 0; i < (flash ? 3 : 2); ++i) {
    const size_t Pi = i == 2 ? 0 : P;
    Pool& s = saved[i];
    AttentionSaved sv{s.p("xn", N() * d.D),           s.p("rstd", N()),
                      s.p("q_raw", qn * N() * qd()),  s.p("k_raw", qn * N() * kvd()),
                      s.p("q_rstd", qn * N() * d.Hq), s.p("k_rstd", qn * N() * d.Hkv),
                      s.p("q", N() * qd()),           s.p("k", N() * kvd()),
                      s.p("v", N() * kvd()),          s.p("probs", Pi),
                      s.p("attn", N() * qd()),        s.p("o", N() * d.D),
                      s.p("lse", i == 2 ? size_t(d.B) * d.Hq * d.T : 0), nullptr};
    Pool& k = scratch[i];
    AttentionScratch sc{k.p("dattn", N() * qd()), k.p("dq", N() * qd()),     k.p("dk", N() * kvd()),
                        k.p("dv", N() * kvd()),   k.p("dq_raw", N() * qd()), k.p("dk_raw", N() * kvd()),
                        k.p("dprobs", Pi),        k.p("dxn", N() * d.D),     k.p("dres", N() * d.D), nullptr};
    const LayerTensors G = attention_weights(grads[i], true);
    float *out = io[i].p("out", N() * d.D), *dx = io[i].p("dx", N() * d.D);
    if (i == 0) {  // qualified: the default composition, whatever RefBackend may ever override
      ref->Backend::attention_block_fwd(d, W, x.data(), out, sv);
      ref->Backend::attention_block_bwd(d, W, G, x.data(), sv, dout.data(), dx, sc);
    } else {  // virtual: the backend's own stage, fused or not
      be->attention_block_fwd(d, W, x.data(), out, sv);
      be->attention_block_bwd(d, W, G, x.data(), sv, dout.data(), dx, sc);
    }
  }
  std::vector<std::string> gnames = {"attn_norm", "wq", "wk", "wv", "wo"};
  if (d.qk_norm) gnames.insert(gnames.end(), {"q_norm", "k_norm"});
  for (int i = 1; i < (flash ? 3 : 2); ++i) {
    SCOPED_TRACE(i == 2 ? "flash form" : "with probabilities");
    compare(io[i], io[0], {"out", "dx"});
    compare(grads[i], grads[0], gnames);
    for (auto* p : {&io[i], &saved[i], &scratch[i], &grads[i]}) p->expect_intact(tag("attention block"));
  }
  Pool fresh;  // the stage must not write its weights
  attention_weights(fresh, false);
  compare(w, fresh, gnames, 0.0);
}

TEST_P(StagesVsRef, FfnBlock) {
  Pool w;
  const LayerTensors W = ffn_weights(w, false);
  const Guarded x = random_vec(N() * d.D, 41), dout = random_vec(N() * d.D, 42);
  const size_t NF = N() * d.F, ND = N() * d.D;
  Pool io[2], saved[2], scratch[2], grads[2];
  for (int i = 0; i < 2; ++i) {
    Pool& s = saved[i];
    FfnSaved sv{s.p("xn", ND), s.p("rstd", N()), s.p("g", NF), s.p("u", NF), s.p("h", NF), s.p("f", ND), nullptr};
    Pool& k = scratch[i];
    FfnScratch sc{k.p("dh", NF), k.p("dg", NF), k.p("du", NF), k.p("dxn", ND), k.p("dres", ND), nullptr};
    const LayerTensors G = ffn_weights(grads[i], true);
    float *out = io[i].p("out", ND), *dx = io[i].p("dx", ND);
    if (i == 0) {
      ref->Backend::ffn_block_fwd(d, W, x.data(), out, sv);
      ref->Backend::ffn_block_bwd(d, W, G, x.data(), sv, dout.data(), dx, sc);
    } else {
      be->ffn_block_fwd(d, W, x.data(), out, sv);
      be->ffn_block_bwd(d, W, G, x.data(), sv, dout.data(), dx, sc);
    }
  }
  compare(io[1], io[0], {"out", "dx"});
  compare(grads[1], grads[0], {"ffn_norm", "w_gate", "w_up", "w_down"});
  for (auto* p : {&io[1], &saved[1], &scratch[1], &grads[1]}) p->expect_intact(tag("ffn block"));
  Pool fresh;
  ffn_weights(fresh, false);
  compare(w, fresh, {"ffn_norm", "w_gate", "w_up", "w_down"}, 0.0);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, StagesVsRef,
                         ::testing::Combine(::testing::ValuesIn(tested_backends()), ::testing::ValuesIn(kCases)),
                         backend_case_name<StageCase>);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StagesVsRef);

}  // namespace
}  // namespace anetrain::test
