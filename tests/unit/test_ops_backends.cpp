// Every op of the Backend contract, on every built-in backend except `ref`, against `ref` on the
// same inputs: odd sizes that defeat any vector-width assumptions, and the real model shapes.
// Outputs live in guarded buffers pre-filled with garbage, so an op that skips writing part of
// an output, writes past it, or adds where it should overwrite (or the reverse) fails.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "contract/registry.h"
#include "model/config.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

// Tolerance, relative to the largest |ref| in the tensor (floored at 1). `ref` sums in double;
// an fp32 backend's sums of K terms, in whatever order its BLAS or SIMD lanes pick, drift by
// about sqrt(K)·eps·(output scale) for random-sign terms: with K ≤ 3072 (Qwen3's F) and
// eps = 6e-8 that is ~7e-6 (the cpu backend measures ≤ 1.2e-6 here), so 1e-4 leaves a >10x
// margin while a wrong formula, index or missing term shows as an O(1) relative error.
constexpr double kTol = 1e-4;
constexpr float kGarbage = 1234.5f;

struct Shape {
  const char* name;
  int B, T, D, F, Hq, Hkv, hd, V;
  int ce_rows;  // rows for cross-entropy: the real vocabularies make a full N×V costly
  float theta, eps;
  int N() const { return B * T; }
};
void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }

const Shape kShapes[] = {
    {"odd_gqa2", 1, 7, 33, 31, 4, 2, 6, 37, 7, 1e4f, 1e-5f},
    {"odd_gqa3", 1, 13, 37, 45, 6, 3, 10, 53, 13, 1e4f, 1e-5f},
    {"odd_mha", 3, 5, 19, 23, 3, 3, 10, 29, 15, 1e4f, 1e-5f},
    {"stories260k", 2, 8, 64, 172, 8, 4, 8, 512, 16, 1e4f, 1e-5f},
    {"stories110m", 2, 6, 768, 2048, 12, 12, 64, 32000, 3, 1e4f, 1e-5f},
    {"qwen3_0_6b", 1, 6, 1024, 3072, 16, 8, 128, 151936, 2, 1e6f, 1e-6f},
};

class OpsVsRef : public ::testing::TestWithParam<std::tuple<std::string, Shape>> {
 protected:
  void SetUp() override {
    be = make_backend(std::get<0>(GetParam()));
    ref = make_backend("ref");
  }
  const Shape& s() const { return std::get<1>(GetParam()); }
  std::string tag(const std::string& what) const { return be->name() + " " + what + " [" + s().name + "]"; }

  std::unique_ptr<Backend> be, ref;
};

TEST_P(OpsVsRef, Linear) {
  const int N = s().N(), in = s().D, out = s().F;
  const Guarded x = random_vec(size_t(N) * in, 1), W = random_vec(size_t(out) * in, 2),
                dy = random_vec(size_t(N) * out, 3);
  Guarded y(size_t(N) * out, kGarbage), y_ref(size_t(N) * out, kGarbage);
  be->linear_fwd(x.data(), W.data(), y.data(), N, in, out);
  ref->linear_fwd(x.data(), W.data(), y_ref.data(), N, in, out);
  const double tol = std::max(kTol, be->caps().numerics.linear_rtol);
  EXPECT_TRUE(all_close(tag("linear_fwd y"), y, y_ref, tol));
  EXPECT_TRUE(y.intact(tag("linear_fwd y")));

  for (bool acc : {false, true}) {
    // With accumulate=false the garbage must be overwritten; with true it must be added to.
    const std::vector<float> init = acc ? random_vec(size_t(N) * in, 4) : std::vector<float>(size_t(N) * in, kGarbage);
    Guarded dx(init), dx_ref(init);
    be->linear_bwd_x(dy.data(), W.data(), dx.data(), N, in, out, acc);
    ref->linear_bwd_x(dy.data(), W.data(), dx_ref.data(), N, in, out, acc);
    const std::string what = std::string("linear_bwd_x dx accumulate=") + (acc ? "true" : "false");
    EXPECT_TRUE(all_close(tag(what), dx, dx_ref, tol));
    EXPECT_TRUE(dx.intact(tag(what)));
  }

  // Decoding's few-row products (the cpu backend streams W as matrix-vector products there).
  for (int rows : {1, 3}) {
    Guarded ys(size_t(rows) * out, kGarbage), ys_ref(size_t(rows) * out, kGarbage);
    be->linear_fwd(x.data(), W.data(), ys.data(), rows, in, out);
    ref->linear_fwd(x.data(), W.data(), ys_ref.data(), rows, in, out);
    const std::string what = "linear_fwd y, " + std::to_string(rows) + " row(s)";
    EXPECT_TRUE(all_close(tag(what), ys, ys_ref, tol));
    EXPECT_TRUE(ys.intact(tag(what)));
  }

  Guarded dW = random_vec(size_t(out) * in, 5), dW_ref = random_vec(size_t(out) * in, 5);
  be->linear_bwd_w(dy.data(), x.data(), dW.data(), N, in, out);
  ref->linear_bwd_w(dy.data(), x.data(), dW_ref.data(), N, in, out);
  EXPECT_TRUE(all_close(tag("linear_bwd_w dW"), dW, dW_ref, tol));
  EXPECT_TRUE(dW.intact(tag("linear_bwd_w dW")));
}

TEST_P(OpsVsRef, Embedding) {
  // Only D matters to the kernel's inner loop; the table is capped so the 152k-row Qwen3 case
  // does not allocate 600 MB, and random_tokens still uses the last row.
  const int N = s().N(), D = s().D, rows = std::min(s().V, 4096);
  const auto tokens = random_tokens(size_t(N), rows, 6);
  const Guarded E = random_vec(size_t(rows) * D, 7), dy = random_vec(size_t(N) * D, 8);
  Guarded y(size_t(N) * D, kGarbage), y_ref(size_t(N) * D, kGarbage);
  be->embedding_fwd(tokens.data(), E.data(), y.data(), N, D);
  ref->embedding_fwd(tokens.data(), E.data(), y_ref.data(), N, D);
  EXPECT_TRUE(all_close(tag("embedding_fwd y (a copy: exact)"), y, y_ref, 0.0));
  EXPECT_TRUE(y.intact(tag("embedding_fwd y")));

  Guarded dE = random_vec(size_t(rows) * D, 9), dE_ref = random_vec(size_t(rows) * D, 9);
  be->embedding_bwd(tokens.data(), dy.data(), dE.data(), N, D);
  ref->embedding_bwd(tokens.data(), dy.data(), dE_ref.data(), N, D);
  EXPECT_TRUE(all_close(tag("embedding_bwd dE"), dE, dE_ref, kTol));
  EXPECT_TRUE(dE.intact(tag("embedding_bwd dE")));
}

TEST_P(OpsVsRef, RmsNorm) {
  const int N = s().N(), D = s().D;
  const Guarded x = random_vec(size_t(N) * D, 10), w = random_vec(size_t(D), 11, 0.25f, 2.0f),
                dy = random_vec(size_t(N) * D, 12);
  Guarded y(size_t(N) * D, kGarbage), y_ref(size_t(N) * D, kGarbage), r(size_t(N), kGarbage),
      r_ref(size_t(N), kGarbage);
  be->rmsnorm_fwd(x.data(), w.data(), y.data(), r.data(), N, D, s().eps);
  ref->rmsnorm_fwd(x.data(), w.data(), y_ref.data(), r_ref.data(), N, D, s().eps);
  EXPECT_TRUE(all_close(tag("rmsnorm_fwd y"), y, y_ref, kTol));
  EXPECT_TRUE(all_close(tag("rmsnorm_fwd rstd"), r, r_ref, kTol));
  EXPECT_TRUE(y.intact(tag("rmsnorm_fwd y")));
  EXPECT_TRUE(r.intact(tag("rmsnorm_fwd rstd")));

  // Both start non-zero: the contract says the op adds to them.
  Guarded dx = random_vec(size_t(N) * D, 13), dx_ref = random_vec(size_t(N) * D, 13);
  Guarded dw = random_vec(size_t(D), 14), dw_ref = random_vec(size_t(D), 14);
  be->rmsnorm_bwd(dy.data(), x.data(), w.data(), r_ref.data(), dx.data(), dw.data(), N, D);
  ref->rmsnorm_bwd(dy.data(), x.data(), w.data(), r_ref.data(), dx_ref.data(), dw_ref.data(), N, D);
  EXPECT_TRUE(all_close(tag("rmsnorm_bwd dx_acc"), dx, dx_ref, kTol));
  EXPECT_TRUE(all_close(tag("rmsnorm_bwd dw_acc"), dw, dw_ref, kTol));
  EXPECT_TRUE(dx.intact(tag("rmsnorm_bwd dx_acc")));
  EXPECT_TRUE(dw.intact(tag("rmsnorm_bwd dw_acc")));
}

TEST_P(OpsVsRef, Rope) {
  const int B = s().B, T = s().T, H = s().Hq, hd = s().hd;
  const size_t n = size_t(B) * T * H * hd;
  const auto x0 = random_vec(n, 15);
  for (RopeStyle style : {RopeStyle::interleaved, RopeStyle::half})
    for (int pos0 : {0, 37}) {
      const std::string what = std::string(rope_style_name(style)) + " pos0=" + std::to_string(pos0);
      Guarded x(x0), x_ref(x0);
      be->rope_fwd(x.data(), B, T, H, hd, pos0, style, s().theta);
      ref->rope_fwd(x_ref.data(), B, T, H, hd, pos0, style, s().theta);
      EXPECT_TRUE(all_close(tag("rope_fwd " + what), x, x_ref, kTol));
      Guarded dx(x0), dx_ref(x0);
      be->rope_bwd(dx.data(), B, T, H, hd, pos0, style, s().theta);
      ref->rope_bwd(dx_ref.data(), B, T, H, hd, pos0, style, s().theta);
      EXPECT_TRUE(all_close(tag("rope_bwd " + what), dx, dx_ref, kTol));
      EXPECT_TRUE(x.intact(tag("rope_fwd " + what)));
      EXPECT_TRUE(dx.intact(tag("rope_bwd " + what)));
    }
}

TEST_P(OpsVsRef, Attention) {
  const AttnShape a{s().B, s().T, s().Hq, s().Hkv, s().hd};
  const size_t qn = size_t(a.B) * a.T * a.Hq * a.hd, kvn = size_t(a.B) * a.T * a.Hkv * a.hd,
               pn = size_t(a.B) * a.Hq * a.T * a.T;
  // Wider than [-1,1] so the softmax is peaked rather than near-uniform even at hd = 128.
  const Guarded q = random_vec(qn, 16, -3, 3), k = random_vec(kvn, 17, -3, 3), v = random_vec(kvn, 18),
                dout = random_vec(qn, 19);
  Guarded out(qn, kGarbage), out_ref(qn, kGarbage), p(pn, kGarbage), p_ref(pn, kGarbage);
  be->attention_fwd(q.data(), k.data(), v.data(), out.data(), p.data(), a);
  ref->attention_fwd(q.data(), k.data(), v.data(), out_ref.data(), p_ref.data(), a);
  EXPECT_TRUE(all_close(tag("attention_fwd out"), out, out_ref, kTol));
  EXPECT_TRUE(all_close(tag("attention_fwd probs (upper triangle must be 0)"), p, p_ref, kTol));
  EXPECT_TRUE(out.intact(tag("attention_fwd out")));
  EXPECT_TRUE(p.intact(tag("attention_fwd probs")));

  // Both backwards read ref's probs so a forward difference cannot mask a backward one.
  Guarded dq(qn, kGarbage), dk(kvn, kGarbage), dv(kvn, kGarbage), dp(pn, kGarbage);
  Guarded dq_ref(qn, kGarbage), dk_ref(kvn, kGarbage), dv_ref(kvn, kGarbage), dp_ref(pn, kGarbage);
  be->attention_bwd(dout.data(), q.data(), k.data(), v.data(), p_ref.data(), dq.data(), dk.data(), dv.data(), dp.data(),
                    a);
  ref->attention_bwd(dout.data(), q.data(), k.data(), v.data(), p_ref.data(), dq_ref.data(), dk_ref.data(),
                     dv_ref.data(), dp_ref.data(), a);
  EXPECT_TRUE(all_close(tag("attention_bwd dq"), dq, dq_ref, kTol));
  EXPECT_TRUE(all_close(tag("attention_bwd dk"), dk, dk_ref, kTol));
  EXPECT_TRUE(all_close(tag("attention_bwd dv"), dv, dv_ref, kTol));
  EXPECT_TRUE(dq.intact(tag("attention_bwd dq")));
  EXPECT_TRUE(dk.intact(tag("attention_bwd dk")));
  EXPECT_TRUE(dv.intact(tag("attention_bwd dv")));
  EXPECT_TRUE(dp.intact(tag("attention_bwd dprobs scratch")));
}

TEST_P(OpsVsRef, SwiGLU) {
  const size_t n = size_t(s().N()) * s().F;
  // g spans the sigmoid's saturated tails as well as its middle.
  const Guarded g = random_vec(n, 20, -8, 8), u = random_vec(n, 21, -2, 2), dh = random_vec(n, 22);
  Guarded h(n, kGarbage), h_ref(n, kGarbage);
  be->swiglu_fwd(g.data(), u.data(), h.data(), n);
  ref->swiglu_fwd(g.data(), u.data(), h_ref.data(), n);
  EXPECT_TRUE(all_close(tag("swiglu_fwd h"), h, h_ref, kTol));
  EXPECT_TRUE(h.intact(tag("swiglu_fwd h")));
  Guarded dg(n, kGarbage), du(n, kGarbage), dg_ref(n, kGarbage), du_ref(n, kGarbage);
  be->swiglu_bwd(dh.data(), g.data(), u.data(), dg.data(), du.data(), n);
  ref->swiglu_bwd(dh.data(), g.data(), u.data(), dg_ref.data(), du_ref.data(), n);
  EXPECT_TRUE(all_close(tag("swiglu_bwd dg"), dg, dg_ref, kTol));
  EXPECT_TRUE(all_close(tag("swiglu_bwd du"), du, du_ref, kTol));
  EXPECT_TRUE(dg.intact(tag("swiglu_bwd dg")));
  EXPECT_TRUE(du.intact(tag("swiglu_bwd du")));
}

TEST_P(OpsVsRef, Residual) {
  const size_t n = size_t(s().N()) * s().D;
  const float alpha = 0.7f;
  const Guarded x = random_vec(n, 23), f = random_vec(n, 24), dy = random_vec(n, 25);
  Guarded y(n, kGarbage), y_ref(n, kGarbage), df(n, kGarbage), df_ref(n, kGarbage);
  be->residual_fwd(x.data(), f.data(), alpha, y.data(), n);
  ref->residual_fwd(x.data(), f.data(), alpha, y_ref.data(), n);
  be->residual_bwd(dy.data(), alpha, df.data(), n);
  ref->residual_bwd(dy.data(), alpha, df_ref.data(), n);
  EXPECT_TRUE(all_close(tag("residual_fwd y"), y, y_ref, kTol));
  EXPECT_TRUE(all_close(tag("residual_bwd df"), df, df_ref, kTol));
  EXPECT_TRUE(y.intact(tag("residual_fwd y")));
  EXPECT_TRUE(df.intact(tag("residual_bwd df")));
}

TEST_P(OpsVsRef, CrossEntropy) {
  const int N = s().ce_rows, V = s().V;
  const Guarded logits = random_vec(size_t(N) * V, 26, -6, 6);
  std::vector<int32_t> targets(static_cast<size_t>(N));
  Rng rng(27);
  for (auto& t : targets) t = int32_t(rng.below(uint64_t(V)));
  targets.back() = V - 1;
  Guarded loss(size_t(N), kGarbage), loss_ref(size_t(N), kGarbage);
  be->cross_entropy_fwd(logits.data(), targets.data(), loss.data(), N, V);
  ref->cross_entropy_fwd(logits.data(), targets.data(), loss_ref.data(), N, V);
  EXPECT_TRUE(all_close(tag("cross_entropy_fwd losses"), loss, loss_ref, kTol));
  EXPECT_TRUE(loss.intact(tag("cross_entropy_fwd losses")));
  const float scale = 0.37f;
  Guarded d(size_t(N) * V, kGarbage), d_ref(size_t(N) * V, kGarbage);
  be->cross_entropy_bwd(logits.data(), targets.data(), scale, d.data(), N, V);
  ref->cross_entropy_bwd(logits.data(), targets.data(), scale, d_ref.data(), N, V);
  EXPECT_TRUE(all_close(tag("cross_entropy_bwd dlogits"), d, d_ref, kTol));
  EXPECT_TRUE(d.intact(tag("cross_entropy_bwd dlogits")));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, OpsVsRef,
                         ::testing::Combine(::testing::ValuesIn(tested_backends()), ::testing::ValuesIn(kShapes)),
                         backend_case_name<Shape>);
// A build with only `ref` has nothing to compare.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OpsVsRef);

}  // namespace
}  // namespace anetrain::test
