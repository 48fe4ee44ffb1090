// The decode_layer_packed stage of every backend against ref's default composition of ops, for
// each weight format, at odd and real shapes (both RoPE styles, GQA, QK-norm): a 3-token prompt
// chunk and then single tokens (the cpu backend's fused one-region path), comparing the layer's
// output after every call and the KV cache it wrote. The fused path must also give the same bits
// with any number of threads (rows and heads are claimed dynamically, but each is computed whole
// by one thread from the same inputs).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "contract/registry.h"
#include "op_test_util.h"
#include "packed_test_util.h"

namespace anetrain::test {
namespace {

struct DecodeCase {
  const char* name;
  int D, F, Hq, Hkv, hd, group;  // group: Q8_0's, dividing D, Hq·hd and F
  bool qk_norm;
  RopeStyle rope;
  float alpha, theta, eps;
};
void PrintTo(const DecodeCase& c, std::ostream* os) { *os << c.name; }

const DecodeCase kCases[] = {
    {"gqa3_interleaved", 96, 160, 6, 2, 16, 32, false, RopeStyle::interleaved, 0.7f, 1e4f, 1e-5f},
    {"gqa2_hd32_half", 128, 192, 4, 2, 32, 64, false, RopeStyle::half, 1.0f, 1e4f, 1e-5f},
    {"gqa2_half_qknorm_scalar_q8", 64, 44, 6, 3, 10, 4, true, RopeStyle::half, 1.3f, 1e4f, 1e-5f},
    {"stories260k", 64, 172, 8, 4, 8, 4, false, RopeStyle::interleaved, 1.0f, 1e4f, 1e-5f},
    {"mha_no_rope", 64, 96, 4, 4, 16, 32, false, RopeStyle::none, 1.0f, 1e4f, 1e-5f},
    {"stories110m", 768, 2048, 12, 12, 64, 64, false, RopeStyle::interleaved, 1.0f, 1e4f, 1e-5f},
    {"qwen3_0_6b", 1024, 3072, 16, 8, 128, 32, true, RopeStyle::half, 1.0f, 1e6f, 1e-6f},
};

// fp32 and bf16: the same weights on both sides and products that differ only in summation
// order, so the fp32 stage bound (1e-4 of scale) applies. Q8_0 quantizes each activation row:
// an input that differs in its last bit can land on the other side of a rounding boundary, one
// term of one product then moves by (max|x|/127)·|w|, about 3e-3 of the output's scale at these
// widths; 5e-3 allows that and still fails a wrong group, scale or head by orders of magnitude.
double tolerance(WeightFormat f) { return f == WeightFormat::q8_0 ? 5e-3 : 1e-4; }

class DecodeStageVsRef : public ::testing::TestWithParam<std::tuple<std::string, DecodeCase, WeightFormat>> {
 protected:
  const DecodeCase& c() const { return std::get<1>(GetParam()); }
  WeightFormat format() const { return std::get<2>(GetParam()); }
  BlockDims dims(int T) const {
    return BlockDims{1, T, c().D, c().Hq, c().Hkv, c().hd, c().F, c().eps, c().alpha, c().theta, c().rope,
                     c().qk_norm};
  }
};

// One layer's packed weights and the buffers of one decoder, owned.
struct Layer {
  std::vector<PackedMatrix> mats;
  std::vector<float> gains[4];
  PackedLayerWeights w{};
  Layer(const DecodeCase& c, WeightFormat f) {
    const int qd = c.Hq * c.hd, kvd = c.Hkv * c.hd;
    const float a = 1.0f / std::sqrt(float(c.D)), ao = 1.0f / std::sqrt(float(qd)), af = 1.0f / std::sqrt(float(c.F));
    const int shape[7][2] = {{qd, c.D}, {kvd, c.D}, {kvd, c.D}, {c.D, qd}, {c.F, c.D}, {c.F, c.D}, {c.D, c.F}};
    const float range[7] = {a, a, a, ao, a, a, af};
    mats.reserve(7);
    for (int i = 0; i < 7; ++i)
      mats.emplace_back(random_vec(size_t(shape[i][0]) * shape[i][1], 500 + i, -range[i], range[i]), shape[i][0],
                        shape[i][1], f, c.group);
    for (int i = 0; i < 4; ++i) gains[i] = random_vec(i < 2 ? size_t(c.D) : size_t(c.hd), 600 + i, 0.5f, 1.5f);
    w.attn_norm = gains[0].data();
    w.ffn_norm = gains[1].data();
    w.q_norm = c.qk_norm ? gains[2].data() : nullptr;
    w.k_norm = c.qk_norm ? gains[3].data() : nullptr;
    for (int i = 0; i < 3; ++i) w.qkv[i] = mats[size_t(i)].ref;
    w.wo = mats[3].ref;
    w.gate_up[0] = mats[4].ref;
    w.gate_up[1] = mats[5].ref;
    w.down = mats[6].ref;
  }
};

struct Buffers {
  static constexpr int kCtx = 8, kChunk = 3;
  Guarded x, x2, k, v, scores;
  Guarded xn, rstd, q_raw, k_raw, q_rstd, k_rstd, q, attn, o, fxn, frstd, g, u, h, f;
  AttentionSaved s{};
  FfnSaved ffn{};
  KvCacheLayer cache{};
  explicit Buffers(const DecodeCase& c) {
    const size_t C = kChunk, qd = size_t(c.Hq) * c.hd, kvd = size_t(c.Hkv) * c.hd;
    x = Guarded(C * c.D), x2 = Guarded(C * c.D), k = Guarded(kCtx * kvd), v = Guarded(kCtx * kvd);
    scores = Guarded(size_t(c.Hq) * C * kCtx);
    xn = Guarded(C * c.D), rstd = Guarded(C), q_raw = Guarded(C * qd), k_raw = Guarded(C * kvd);
    q_rstd = Guarded(C * c.Hq), k_rstd = Guarded(C * c.Hkv), q = Guarded(C * qd), attn = Guarded(C * qd);
    o = Guarded(C * c.D), fxn = Guarded(C * c.D), frstd = Guarded(C), g = Guarded(C * c.F), u = Guarded(C * c.F);
    h = Guarded(C * c.F), f = Guarded(C * c.D);
    s = AttentionSaved{xn.data(),  rstd.data(), q_raw.data(), k_raw.data(), q_rstd.data(), k_rstd.data(),
                       q.data(),   nullptr,     nullptr,      nullptr,      attn.data(),   o.data(), nullptr, nullptr};
    ffn = FfnSaved{fxn.data(), frstd.data(), g.data(), u.data(), h.data(), f.data(), nullptr};
    cache = KvCacheLayer{k.data(), v.data(), kCtx};
  }
  bool intact(const std::string& who) const {
    for (const Guarded* b : {&x, &x2, &k, &v, &scores, &xn, &q, &attn, &h})
      if (!b->intact(who)) return false;
    return true;
  }
};

// A prompt chunk of kChunk tokens at position 0, then single tokens up to kCtx; `outputs` gets
// the layer's output after every call. use_default: the base class's composition of `be`'s ops.
std::vector<std::vector<float>> run(Backend& be, bool use_default, const DecodeCase& c, const Layer& L,
                                    Buffers& b, const std::vector<BlockDims>& calls) {
  std::vector<std::vector<float>> outputs;
  int pos = 0, token = 0;
  for (const BlockDims& d : calls) {
    const std::vector<float> in = random_vec(size_t(d.T) * c.D, 700 + token, -2.0f, 2.0f);
    std::copy(in.begin(), in.end(), b.x.data());
    if (use_default)
      be.Backend::decode_layer_packed(d, L.w, b.x.data(), b.x2.data(), b.cache, pos, b.s, b.ffn, b.scores.data());
    else
      be.decode_layer_packed(d, L.w, b.x.data(), b.x2.data(), b.cache, pos, b.s, b.ffn, b.scores.data());
    outputs.emplace_back(b.x.data(), b.x.data() + size_t(d.T) * c.D);
    pos += d.T;
    token += d.T;
  }
  return outputs;
}

TEST_P(DecodeStageVsRef, ChunkThenSingleTokens) {
  auto be = make_backend(std::get<0>(GetParam()));
  auto ref = make_backend("ref");
  const Layer L(c(), format());
  std::vector<BlockDims> calls = {dims(Buffers::kChunk)};
  for (int p = Buffers::kChunk; p < Buffers::kCtx; ++p) calls.push_back(dims(1));
  Buffers got(c()), want(c());
  const auto a = run(*be, false, c(), L, got, calls);
  const auto b = run(*ref, true, c(), L, want, calls);
  const std::string who = be->name() + " " + weight_format_name(format()) + " [" + c().name + "]";
  const double tol = tolerance(format());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(all_close(who + " output of call " + std::to_string(i), a[i].data(), b[i].data(), a[i].size(), tol));
  EXPECT_TRUE(all_close(who + " keys in the cache", got.k, want.k, tol));
  EXPECT_TRUE(all_close(who + " values in the cache", got.v, want.v, tol));
  EXPECT_TRUE(got.intact(who));
}

TEST_P(DecodeStageVsRef, SameBitsWithAnyThreadCount) {
  auto be = make_backend(std::get<0>(GetParam()));
  const Layer L(c(), format());
  const std::vector<BlockDims> calls(4, dims(1));
  const int threads = omp_get_max_threads();
  std::vector<std::vector<std::vector<float>>> outs;
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    Buffers b(c());
    outs.push_back(run(*be, false, c(), L, b, calls));
  }
  omp_set_num_threads(threads);
  for (size_t i = 1; i < outs.size(); ++i) EXPECT_EQ(outs[i], outs[0]) << "threads " << i + 1 << " vs 1";
}

// Shapes that disagree with the block's dimensions are refused before anything is written.
TEST(DecodeStage, RefusesWeightsOfAnotherShape) {
  const DecodeCase& c = kCases[0];
  const BlockDims d{1, 1, c.D, c.Hq, c.Hkv, c.hd, c.F, c.eps, c.alpha, c.theta, c.rope, c.qk_norm};
  for (const std::string& name : {std::string("cpu"), std::string("ref")}) {
    auto be = make_backend(name);
    Layer L(c, WeightFormat::f32);
    L.w.wo.rows -= 1;
    Buffers b(c);
    const std::string e = error_of([&] {
      be->decode_layer_packed(d, L.w, b.x.data(), b.x2.data(), b.cache, 0, b.s, b.ffn, b.scores.data());
    });
    EXPECT_NE(e.find("Wo is 95×96"), std::string::npos) << name << ": " << e;
    BlockDims two = d;
    two.B = 2;
    Layer ok(c, WeightFormat::f32);
    EXPECT_NE(error_of([&] {
                be->decode_layer_packed(two, ok.w, b.x.data(), b.x2.data(), b.cache, 0, b.s, b.ffn, b.scores.data());
              }).find("one sequence"),
              std::string::npos)
        << name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllBackends, DecodeStageVsRef,
    ::testing::Combine(::testing::ValuesIn(tested_backends()), ::testing::ValuesIn(kCases),
                       ::testing::Values(WeightFormat::f32, WeightFormat::bf16, WeightFormat::q8_0)),
    [](const ::testing::TestParamInfo<std::tuple<std::string, DecodeCase, WeightFormat>>& info) {
      std::string n = std::get<0>(info.param) + "_" + std::get<1>(info.param).name + "_" +
                      weight_format_name(std::get<2>(info.param));
      for (char& ch : n)
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

}  // namespace
}  // namespace anetrain::test
