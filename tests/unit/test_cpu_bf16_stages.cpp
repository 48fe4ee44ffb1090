// cpu-bf16 overrides block stages only to write each bf16 operand once, in the pass that produces
// it, instead of converting it before every product: the same roundings of the same values. So
// its stages must equal its own composition of ops (the base class's default, run on the same
// backend object) bit for bit — with weights inside the arena (read from the bf16 copy) and
// outside it (converted per call), at odd and real shapes, without and with low-rank adapters
// (over a trainable or a frozen base, whose null gradients skip the base's weight products), and
// with their inputs dropped (adapter dropout: the fused stages mask their bf16 copy of the input).
// With adapters the backward is the one exception, bounded instead (expect_fused_equals).
#include <gtest/gtest.h>

#include <algorithm>
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

// Adapters (LoRA) on a block's projections, after its base tensors in the same arena as the
// parameter table lays them out: per projection A (r, in), then Bt (r, out).
struct Projection {
  Adapter LayerAdapters::*adapter;
  int in, out;
};
struct LoraCase {
  const char* name;
  int rank;
  bool frozen_base;  // the base's gradient pointers null, as train --lora binds them
  double dropout = 0;  // adapter dropout's p (a training step's)
};
const LoraCase kLoraCases[] = {{"no adapters", 0, false},
                               {"adapters r=16", 16, false},
                               {"frozen base, r=3", 3, true},
                               {"frozen base, r=8, dropout 0.3", 8, true, 0.3}};
constexpr float kLoraScale = 2.0f;  // α / r: away from 1, so a dropped or doubled scale shows

size_t adapter_floats(const std::vector<Projection>& ps, int r) {
  size_t n = 0;
  for (const Projection& p : ps) n += size_t(r) * (p.in + p.out);
  return n;
}
// With dropout, `scratch` holds N × the widest input.
void bind_adapters(LayerAdapters& L, float* p, const std::vector<Projection>& ps, int r, double dropout = 0,
                   std::vector<float>* scratch = nullptr) {
  if (!r) return;
  L.rank = r, L.scale = kLoraScale;
  if (dropout > 0) L.dropout = AdapterDropout{dropout, 0xD20905, 5, scratch->data()};
  for (const Projection& pr : ps) {
    (L.*pr.adapter).a = p, p += size_t(r) * pr.in;
    (L.*pr.adapter).bt = p, p += size_t(r) * pr.out;
  }
}
// The arena's adapters drawn wider than the base (±0.2): their share of each output is then a
// sizeable part of it, not lost under the base's rounding.
void widen(std::vector<float>& arena, size_t from) {
  for (size_t i = from; i < arena.size(); ++i) arena[i] *= 4.0f;
}

// What a block stage gives the model: its output, dx and the whole gradient arena.
struct StageResult {
  std::vector<float> out, dx, grads;
  size_t adapters_at = 0;  // where the adapters' gradients start in grads
};
// Which stage runs: the backend's own (fused on cpu-bf16) or the contract's composition of ops.
enum class StageForm { own, composed };

// The fused stage against its composition. With adapters, the fused backward adds the dx terms of
// the adapters whose projections share an input (q, k, v; gate, up) in one product after the
// base's products, where the composition adds each right after its projection: the same bf16
// operands, the fp32 sums in dx's rows in another order. That moves a row's element by a few
// fp32 roundings of its terms (measured: ≤ 2e-7 of the tensor's scale), and dx and the norm gains'
// gradients with it. 1e-5 of each tensor's scale bounds that and still catches a lost, doubled or
// misscaled adapter term: the adapters are drawn to be a sizeable share of every output (widen).
// The forward is unchanged: the same bits. (The adapters' own gradients come out bit-equal here
// too, but the batched product's row count may pick another kernel on another CPU: bounded alike.)
void expect_fused_equals(const StageResult& fused, const StageResult& composed, int rank) {
  EXPECT_TRUE(same_bits("out", fused.out, composed.out));
  if (rank == 0) {
    EXPECT_TRUE(same_bits("dx", fused.dx, composed.dx));
    EXPECT_TRUE(same_bits("parameter gradients", fused.grads, composed.grads));
    return;
  }
  constexpr double kReorderTol = 1e-5;
  const size_t at = composed.adapters_at;
  EXPECT_TRUE(all_close("dx", fused.dx.data(), composed.dx.data(), composed.dx.size(), kReorderTol));
  EXPECT_TRUE(all_close("base gradients", fused.grads.data(), composed.grads.data(), at, kReorderTol));
  EXPECT_TRUE(all_close("adapter gradients", fused.grads.data() + at, composed.grads.data() + at,
                        composed.grads.size() - at, kReorderTol));
}

StageResult run_ffn(const std::string& backend, StageForm form, const Shape& sh, const LoraCase& lc, bool in_arena,
                    bool zero_grads) {
  const int N = sh.N, D = sh.D, F = sh.F, r = lc.rank;
  BlockDims d{1, N, D, 2, 1, 4, F, 1e-5f, 0.7f, 1e4f, RopeStyle::interleaved, false};
  d.lora_rank = r;
  const size_t DF = size_t(D) * F, base = size_t(D) + 3 * DF;
  const std::vector<Projection> projs = {{&LayerAdapters::w_gate, D, F}, {&LayerAdapters::w_up, D, F},
                                         {&LayerAdapters::w_down, F, D}};
  // gain, gate, up, down in one arena (as a model's weights are), then the adapters.
  std::vector<float> arena = random_vec(base + adapter_floats(projs, r), 11, -0.05f, 0.05f);
  widen(arena, base);
  for (int i = 0; i < D; ++i) arena[size_t(i)] = 0.5f + 0.01f * float(i % 50);
  std::vector<float> loose = arena;
  const std::vector<float> x = random_vec(size_t(N) * D, 12), dout = random_vec(size_t(N) * D, 13);
  auto be = make_backend(backend);
  float* wbase = in_arena ? arena.data() : loose.data();
  be->sync_weights({arena.data(), arena.size(), kArenaVersion});
  StageResult res;
  res.adapters_at = base;
  res.grads = zero_grads ? std::vector<float>(arena.size()) : random_vec(arena.size(), 14);  // non-zero: it accumulates
  LayerTensors w{}, g{};
  w.ffn_norm = wbase, w.w_gate = wbase + D, w.w_up = wbase + D + DF, w.w_down = wbase + D + 2 * DF;
  float* gb = res.grads.data();
  if (!lc.frozen_base) g.ffn_norm = gb, g.w_gate = gb + D, g.w_up = gb + D + DF, g.w_down = gb + D + 2 * DF;
  std::vector<float> drop_scratch(size_t(N) * std::max(D, F));
  bind_adapters(w.lora, wbase + base, projs, r, lc.dropout, &drop_scratch);
  bind_adapters(g.lora, gb + base, projs, r);
  std::vector<float> xn(size_t(N) * D), rstd(N), gg(size_t(N) * F), u(size_t(N) * F), h(size_t(N) * F),
      f(size_t(N) * D), dh(size_t(N) * F), dg(size_t(N) * F), du(size_t(N) * F), dxn(size_t(N) * D),
      dres(size_t(N) * D), lora_t(3 * size_t(N) * r), lora_u(size_t(N) * r);
  FfnSaved s{xn.data(), rstd.data(), gg.data(), u.data(), h.data(), f.data(), r ? lora_t.data() : nullptr};
  FfnScratch k{dh.data(), dg.data(), du.data(), dxn.data(), dres.data(), r ? lora_u.data() : nullptr};
  res.out.resize(size_t(N) * D);
  res.dx.resize(size_t(N) * D);
  if (form == StageForm::own) {
    be->ffn_block_fwd(d, w, x.data(), res.out.data(), s);
    be->ffn_block_bwd(d, w, g, x.data(), s, dout.data(), res.dx.data(), k);
  } else {
    be->Backend::ffn_block_fwd(d, w, x.data(), res.out.data(), s);
    be->Backend::ffn_block_bwd(d, w, g, x.data(), s, dout.data(), res.dx.data(), k);
  }
  return res;
}

TEST(CpuBf16Stages, FfnBlockEqualsItsComposition) {
  for (const Shape& sh : kShapes)
    for (const LoraCase& lc : kLoraCases)
      for (bool in_arena : {true, false}) {
        SCOPED_TRACE(std::string(sh.name) + ", " + lc.name + (in_arena ? ", weights in the arena" : ", loose weights"));
        const StageResult fused = run_ffn("cpu-bf16", StageForm::own, sh, lc, in_arena, false);
        const StageResult composed = run_ffn("cpu-bf16", StageForm::composed, sh, lc, in_arena, false);
        expect_fused_equals(fused, composed, lc.rank);
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

// The attention block's StageResult; empty when `flash` is asked for and the backend has no flash
// form at this shape.
StageResult run_attention(const std::string& backend, StageForm form, const AttnCase& c, bool flash,
                          const LoraCase& lc, bool in_arena, bool zero_grads) {
  const int r = lc.rank;
  BlockDims d{c.B, c.T, c.D, c.Hq, c.Hkv, c.hd, 8, 1e-6f, 0.7f, 1e4f, c.rope, c.qk_norm};
  d.lora_rank = r;
  const size_t N = size_t(d.N()), D = c.D, qd = size_t(c.Hq) * c.hd, kvd = size_t(c.Hkv) * c.hd;
  auto be = make_backend(backend);
  if (flash && !be->attention_flash(AttnShape{c.B, c.T, c.Hq, c.Hkv, c.hd})) return {};  // short T: none
  const std::vector<Projection> projs = {{&LayerAdapters::wq, c.D, int(qd)}, {&LayerAdapters::wk, c.D, int(kvd)},
                                         {&LayerAdapters::wv, c.D, int(kvd)}, {&LayerAdapters::wo, int(qd), c.D}};
  // attn_norm, q_norm, k_norm, wq, wk, wv, wo in one arena, then the adapters.
  const size_t sizes[7] = {D, size_t(c.hd), size_t(c.hd), qd * D, kvd * D, kvd * D, D * qd};
  size_t base = 0, at[7];
  for (int i = 0; i < 7; ++i) at[i] = base, base += sizes[i];
  std::vector<float> arena = random_vec(base + adapter_floats(projs, r), 21, -0.06f, 0.06f);
  widen(arena, base);
  for (size_t i = 0; i < D + 2 * size_t(c.hd); ++i) arena[i] = 0.6f + 0.01f * float(i % 40);
  std::vector<float> loose = arena;
  const std::vector<float> x = random_vec(N * D, 22), dout = random_vec(N * D, 23);
  be->sync_weights({arena.data(), arena.size(), kArenaVersion});
  float* wb = in_arena ? arena.data() : loose.data();
  StageResult res;
  res.adapters_at = base;
  res.grads = zero_grads ? std::vector<float>(arena.size()) : random_vec(arena.size(), 24);
  float* gb = res.grads.data();
  LayerTensors w{}, g{};
  float* LayerTensors::*fields[7] = {&LayerTensors::attn_norm, &LayerTensors::q_norm, &LayerTensors::k_norm,
                                     &LayerTensors::wq,        &LayerTensors::wk,     &LayerTensors::wv,
                                     &LayerTensors::wo};
  for (int i = 0; i < 7; ++i) w.*fields[i] = wb + at[i], g.*fields[i] = lc.frozen_base ? nullptr : gb + at[i];
  std::vector<float> drop_scratch(N * std::max(D, qd));
  bind_adapters(w.lora, wb + base, projs, r, lc.dropout, &drop_scratch);
  bind_adapters(g.lora, gb + base, projs, r);
  const size_t P = size_t(c.B) * c.Hq * c.T * c.T;
  std::vector<float> xn(N * D), rstd(N), q_raw(N * qd), k_raw(N * kvd), q_rstd(N * c.Hq), k_rstd(N * c.Hkv),
      q(N * qd), k(N * kvd), v(N * kvd), probs(flash ? 0 : P), attn(N * qd), o(N * D),
      lse(flash ? size_t(c.B) * c.Hq * c.T : 0), lora_t(4 * N * r), lora_u(N * r);
  AttentionSaved s{xn.data(),   rstd.data(), q_raw.data(), k_raw.data(), q_rstd.data(),
                   k_rstd.data(), q.data(),  k.data(),     v.data(),     flash ? nullptr : probs.data(),
                   attn.data(), o.data(),    flash ? lse.data() : nullptr, r ? lora_t.data() : nullptr};
  std::vector<float> dattn(N * qd), dq(N * qd), dk(N * kvd), dv(N * kvd), dq_raw(N * qd), dk_raw(N * kvd),
      dprobs(flash ? 0 : P), dxn(N * D), dres(N * D);
  AttentionScratch sc{dattn.data(), dq.data(), dk.data(), dv.data(), dq_raw.data(), dk_raw.data(),
                      flash ? nullptr : dprobs.data(), dxn.data(), dres.data(), r ? lora_u.data() : nullptr};
  res.out.resize(N * D);
  res.dx.resize(N * D);
  if (form == StageForm::own) {
    be->attention_block_fwd(d, w, x.data(), res.out.data(), s);
    be->attention_block_bwd(d, w, g, x.data(), s, dout.data(), res.dx.data(), sc);
  } else {
    be->Backend::attention_block_fwd(d, w, x.data(), res.out.data(), s);
    be->Backend::attention_block_bwd(d, w, g, x.data(), s, dout.data(), res.dx.data(), sc);
  }
  return res;
}

TEST(CpuBf16Stages, AttentionBlockEqualsItsComposition) {
  int flash_cases = 0;
  for (const AttnCase& c : kAttnCases)
    for (bool flash : {false, true})
      for (const LoraCase& lc : kLoraCases)
        for (bool in_arena : {true, false}) {
          SCOPED_TRACE(std::string(c.name) + (flash ? ", flash" : ", probabilities") + ", " + lc.name +
                       (in_arena ? ", weights in the arena" : ", loose weights"));
          const StageResult fused = run_attention("cpu-bf16", StageForm::own, c, flash, lc, in_arena, false);
          const StageResult composed = run_attention("cpu-bf16", StageForm::composed, c, flash, lc, in_arena, false);
          if (fused.out.empty()) continue;
          flash_cases += flash;
          expect_fused_equals(fused, composed, lc.rank);
        }
  EXPECT_GE(flash_cases, 2) << "the flash form ran on too few cases";
}

// The same stages against ref's float64-accumulating composition, from zero gradients so each
// gradient is compared at its own scale: cpu-bf16 (fused) within its stated stage bound, cpu (fp32,
// composed) within the contract tests' 1e-4. Bit-equality with the composition above does not
// show that the composition itself is right with adapters; this does.
void expect_close(const StageResult& got, const StageResult& want, double tol) {
  EXPECT_TRUE(all_close("out", got.out.data(), want.out.data(), want.out.size(), tol));
  EXPECT_TRUE(all_close("dx", got.dx.data(), want.dx.data(), want.dx.size(), tol));
  const size_t at = want.adapters_at;
  EXPECT_TRUE(all_close("base gradients", got.grads.data(), want.grads.data(), at, tol));
  EXPECT_TRUE(all_close("adapter gradients", got.grads.data() + at, want.grads.data() + at, want.grads.size() - at, tol));
}

TEST(CpuBf16Stages, BlocksWithAdaptersMatchRef) {
  const char* backends[] = {"cpu-bf16", "cpu"};
  auto tol = [](const char* backend) { return std::max(1e-4, make_backend(backend)->caps().numerics.stage_rtol); };
  for (const LoraCase& lc : kLoraCases) {
    if (!lc.rank) continue;
    for (const Shape& sh : kShapes) {
      if (lc.dropout > 0 && sh.D >= 1024) continue;  // ref's float64 loops at qwen3's width: once is enough
      const StageResult want = run_ffn("ref", StageForm::composed, sh, lc, true, true);
      for (const char* backend : backends) {
        SCOPED_TRACE(std::string(backend) + " ffn " + sh.name + ", " + lc.name);
        expect_close(run_ffn(backend, StageForm::own, sh, lc, true, true), want, tol(backend));
      }
    }
    for (const AttnCase& c : kAttnCases) {
      if (lc.dropout > 0 && c.D >= 1024) continue;
      const StageResult want = run_attention("ref", StageForm::composed, c, false, lc, true, true);
      for (const char* backend : backends) {
        SCOPED_TRACE(std::string(backend) + " attention " + c.name + ", " + lc.name);
        expect_close(run_attention(backend, StageForm::own, c, false, lc, true, true), want, tol(backend));
      }
    }
  }
}

}  // namespace
}  // namespace anetrain::test
