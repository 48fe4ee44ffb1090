// Finite-difference checks of every backward on the `ref` backend (the oracle the other
// backends are compared with, so its gradients must be right on their own), then of the whole
// model: forward/backward of tiny models (GQA + QK-norm tied and untied, MHA without QK-norm)
// against central differences of the loss, for every entry of every parameter tensor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "contract/registry.h"
#include "model/model.h"
#include "model/transformer.h"
#include "op_test_util.h"

namespace anetrain::test {
namespace {

// The ops: the objective is L = Σ y⊙R, summed in double over ref's float outputs, so the
// analytic gradient is the op's backward called with dy = R. ref accumulates in double but
// stores float, so each output a perturbation moves carries ~6e-8 relative rounding, and a
// difference quotient over step h has noise ~1e-7/h: 1e-5 at h = 1e-2 on these O(1) values.
// Richardson extrapolation (below) makes truncation O(h⁴), negligible at that h; the measured
// worst error is ~1e-5 of max(1, |analytic|), so the 2e-3 bound has a 100x margin, while a
// wrong formula (dropped term, missing gain, wrong kv head, wrong sign) is off by O(1).
constexpr double kOpStep = 1e-2;
constexpr double kOpRtol = 2e-3;

using Objective = std::function<double()>;

// L = Σ y⊙R (in double) after `fwd` has written y.
Objective weighted(std::function<void()> fwd, const std::vector<float>& y, const std::vector<float>& R) {
  return [fwd, &y, &R] {
    fwd();
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += double(y[i]) * R[i];
    return s;
  };
}

// ∂L/∂x[i] by central differences at steps h and 2h combined by Richardson extrapolation
// ((4·D(h) − D(2h))/3, error O(h⁴)). Each quotient divides by the step actually taken, since
// float(x ± h) is rounded and for |x| ≫ h that rounding is a visible fraction of h.
double central_diff(float* x, size_t i, double h, const Objective& L) {
  const float x0 = x[i];
  auto quotient = [&](double step) {
    x[i] = float(x0 + step);
    const double xp = x[i], lp = L();
    x[i] = float(x0 - step);
    const double xm = x[i], lm = L();
    return (lp - lm) / (xp - xm);
  };
  const double d1 = quotient(h);
  const double d2 = quotient(2 * h);
  x[i] = x0;
  return (4 * d1 - d2) / 3;
}

// Every analytic[i] against its difference quotient: |fd − analytic| ≤ rtol·max(floor, |analytic|).
// The ops use floor 1, their gradients being O(1).
::testing::AssertionResult check(const std::string& what, float* x, const float* analytic, size_t n, const Objective& L,
                                 double h = kOpStep, double floor = 1.0, double rtol = kOpRtol) {
  double worst = 0, wfd = 0;
  size_t wi = 0;
  for (size_t i = 0; i < n; ++i) {
    const double fd = central_diff(x, i, h, L);
    const double r = std::fabs(fd - analytic[i]) / std::max(floor, std::fabs(double(analytic[i])));
    if (r > worst) worst = r, wi = i, wfd = fd;
  }
  if (worst <= rtol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": index " << wi << " analytic " << analytic[wi]
                                       << " vs finite difference " << wfd << " (relative error " << worst << ")";
}

// What a backward added to a buffer that started at `init`: checks += and the value at once.
std::vector<float> added(const std::vector<float>& after, const std::vector<float>& init) {
  std::vector<float> d(after.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = after[i] - init[i];
  return d;
}

class GradCheck : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> ref = make_backend("ref");
};

TEST_F(GradCheck, Linear) {
  const int N = 3, in = 5, out = 4;
  auto x = random_vec(N * in, 1), W = random_vec(out * in, 2), R = random_vec(N * out, 3);
  std::vector<float> y(N * out);
  const Objective L = weighted([&] { ref->linear_fwd(x.data(), W.data(), y.data(), N, in, out); }, y, R);
  std::vector<float> dx(N * in, 99.0f);
  ref->linear_bwd_x(R.data(), W.data(), dx.data(), N, in, out, false);
  EXPECT_TRUE(check("linear dx", x.data(), dx.data(), x.size(), L));
  const auto dx0 = random_vec(N * in, 4), dW0 = random_vec(out * in, 5);
  auto dx_acc = dx0, dW = dW0;
  ref->linear_bwd_x(R.data(), W.data(), dx_acc.data(), N, in, out, true);
  EXPECT_TRUE(check("linear dx (accumulate)", x.data(), added(dx_acc, dx0).data(), x.size(), L));
  ref->linear_bwd_w(R.data(), x.data(), dW.data(), N, in, out);
  EXPECT_TRUE(check("linear dW", W.data(), added(dW, dW0).data(), W.size(), L));
}

TEST_F(GradCheck, Embedding) {
  const int V = 6, D = 4, N = 9;
  const auto tokens = random_tokens(N, V, 6);
  auto E = random_vec(V * D, 7), R = random_vec(N * D, 8);
  std::vector<float> y(N * D);
  const Objective L = weighted([&] { ref->embedding_fwd(tokens.data(), E.data(), y.data(), N, D); }, y, R);
  const auto dE0 = random_vec(V * D, 9);
  auto dE = dE0;
  ref->embedding_bwd(tokens.data(), R.data(), dE.data(), N, D);
  EXPECT_TRUE(check("embedding dE", E.data(), added(dE, dE0).data(), E.size(), L));
}

// rows × D RMSNorm with a D-vector gain. QK-norm is this with rows = N·heads and D = hd, the one
// gain shared by every head, so dw must sum over heads as well as positions.
void check_rmsnorm(Backend& ref, const std::string& what, int rows, int D, float eps) {
  auto x = random_vec(size_t(rows) * D, 10), w = random_vec(D, 11, -1.5f, 1.5f), R = random_vec(size_t(rows) * D, 12);
  std::vector<float> y(x.size()), rstd(rows);
  const Objective L = weighted([&] { ref.rmsnorm_fwd(x.data(), w.data(), y.data(), rstd.data(), rows, D, eps); }, y, R);
  L();
  const auto dx0 = random_vec(x.size(), 13), dw0 = random_vec(D, 14);
  auto dx = dx0, dw = dw0;
  ref.rmsnorm_bwd(R.data(), x.data(), w.data(), rstd.data(), dx.data(), dw.data(), rows, D);
  EXPECT_TRUE(check(what + " dx", x.data(), added(dx, dx0).data(), x.size(), L));
  EXPECT_TRUE(check(what + " dw", w.data(), added(dw, dw0).data(), w.size(), L));
}

TEST_F(GradCheck, RmsNorm) { check_rmsnorm(*ref, "rmsnorm", 3, 7, 1e-5f); }
TEST_F(GradCheck, QkNormOverHeads) { check_rmsnorm(*ref, "qk-norm (N=3, H=4, hd=6)", 3 * 4, 6, 1e-6f); }

TEST_F(GradCheck, Rope) {
  const int B = 2, T = 3, H = 2;
  for (int hd : {6, 10})
    for (RopeStyle style : {RopeStyle::interleaved, RopeStyle::half}) {
      const size_t n = size_t(B) * T * H * hd;
      auto x = random_vec(n, 15), R = random_vec(n, 16);
      std::vector<float> y(n);
      // pos0 = 5, and a small θ so every pair turns visibly within a few positions.
      const Objective L = weighted(
          [&] {
            y = x;
            ref->rope_fwd(y.data(), B, T, H, hd, 5, style, 100.0f);
          },
          y, R);
      auto dx = R;
      ref->rope_bwd(dx.data(), B, T, H, hd, 5, style, 100.0f);
      EXPECT_TRUE(check(std::string("rope ") + rope_style_name(style) + " hd=" + std::to_string(hd), x.data(),
                        dx.data(), n, L));
    }
}

TEST_F(GradCheck, Attention) {
  for (auto [Hq, Hkv] : {std::pair{4, 2}, std::pair{6, 3}, std::pair{3, 3}}) {
    const AttnShape s{2, 4, Hq, Hkv, 6};
    const size_t qn = size_t(s.B) * s.T * Hq * s.hd, kvn = size_t(s.B) * s.T * Hkv * s.hd;
    const size_t pn = size_t(s.B) * Hq * s.T * s.T;
    auto q = random_vec(qn, 17, -2, 2), k = random_vec(kvn, 18, -2, 2), v = random_vec(kvn, 19), R = random_vec(qn, 20);
    std::vector<float> out(qn), probs(pn), dprobs(pn), dq(qn), dk(kvn), dv(kvn);
    const Objective L =
        weighted([&] { ref->attention_fwd(q.data(), k.data(), v.data(), out.data(), probs.data(), s); }, out, R);
    L();
    ref->attention_bwd(R.data(), q.data(), k.data(), v.data(), probs.data(), dq.data(), dk.data(), dv.data(),
                       dprobs.data(), s);
    const std::string tag = "attention Hq=" + std::to_string(Hq) + " Hkv=" + std::to_string(Hkv);
    EXPECT_TRUE(check(tag + " dq", q.data(), dq.data(), qn, L));
    EXPECT_TRUE(check(tag + " dk", k.data(), dk.data(), kvn, L));
    EXPECT_TRUE(check(tag + " dv", v.data(), dv.data(), kvn, L));
  }
}

TEST_F(GradCheck, SwiGLU) {
  const size_t n = 24;
  auto g = random_vec(n, 21, -5, 5), u = random_vec(n, 22, -2, 2), R = random_vec(n, 23);
  std::vector<float> h(n), dg(n), du(n);
  const Objective L = weighted([&] { ref->swiglu_fwd(g.data(), u.data(), h.data(), n); }, h, R);
  ref->swiglu_bwd(R.data(), g.data(), u.data(), dg.data(), du.data(), n);
  EXPECT_TRUE(check("swiglu dg", g.data(), dg.data(), n, L));
  EXPECT_TRUE(check("swiglu du", u.data(), du.data(), n, L));
}

TEST_F(GradCheck, Residual) {
  const size_t n = 10;
  const float alpha = 0.7f;
  auto x = random_vec(n, 24), f = random_vec(n, 25), R = random_vec(n, 26);
  std::vector<float> y(n), df(n);
  const Objective L = weighted([&] { ref->residual_fwd(x.data(), f.data(), alpha, y.data(), n); }, y, R);
  ref->residual_bwd(R.data(), alpha, df.data(), n);
  EXPECT_TRUE(check("residual df", f.data(), df.data(), n, L));
  EXPECT_TRUE(check("residual dx (the skip path passes dy through)", x.data(), R.data(), n, L));
}

TEST_F(GradCheck, CrossEntropy) {
  const int N = 3, V = 7;
  const float scale = 0.37f;  // the mean-loss 1/N in training; any value must pass through
  auto z = random_vec(N * V, 27, -3, 3);
  const std::vector<int32_t> targets = {2, 6, 2};
  std::vector<float> losses(N), dz(N * V);
  const Objective L = [&] {
    ref->cross_entropy_fwd(z.data(), targets.data(), losses.data(), N, V);
    double s = 0;
    for (float l : losses) s += l;
    return scale * s;
  };
  ref->cross_entropy_bwd(z.data(), targets.data(), scale, dz.data(), N, V);
  EXPECT_TRUE(check("cross_entropy dlogits", z.data(), dz.data(), dz.size(), L));
}

// ---- the whole model ----
// The objective is the summed loss (backward with grad_scale = N gives its gradient), recomputed
// in double from forward's float logits: the float per-row losses (~2.4, ulp 2.4e-7) would
// otherwise be the noise floor. What remains is the rounding of every float activation that a
// perturbation moves, ~3e-7 in L. Parameter scales differ 50-fold (embedding 0.02, gains ~1),
// so the step is 3% of each tensor's RMS value, where Richardson truncation and that noise
// meet, and the error is taken relative to max(|analytic|, RMS of the tensor's gradient).
// Every entry of every tensor is checked (a few thousand, ~2 s in all). Measured worst: 9e-4;
// the bound 1e-2 leaves 10x, and each broken backward tried was off by 0.3 or more.
constexpr double kModelStep = 3e-2;
constexpr double kModelRtol = 1e-2;

double rms(const float* p, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += double(p[i]) * p[i];
  return std::sqrt(s / double(n));
}

double summed_loss(const Workspace& ws, int V) {
  double sum = 0;
  for (int n = 0; n < ws.B * ws.T; ++n) {
    const float* z = ws.logits + size_t(n) * V;
    double mx = -INFINITY, e = 0;
    for (int i = 0; i < V; ++i) mx = std::max(mx, double(z[i]));
    for (int i = 0; i < V; ++i) e += std::exp(double(z[i]) - mx);
    sum += mx + std::log(e) - z[ws.targets[n]];
  }
  return sum;
}

struct Variant {
  const char* name;
  bool tied, qk_norm;
  int kv_heads;
  RopeStyle rope;
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }
const Variant kVariants[] = {{"gqa_qknorm_tied_half", true, true, 2, RopeStyle::half},
                             {"gqa_qknorm_untied_interleaved", false, true, 2, RopeStyle::interleaved},
                             // the stages' other branch: no QK-norm, a kv head per query head
                             {"mha_untied_half", false, false, 4, RopeStyle::half}};

class ModelGradCheck : public ::testing::TestWithParam<Variant> {};

TEST_P(ModelGradCheck, EveryParameterTensor) {
  ModelConfig c;  // arch stays "llama": only the fields below decide the math
  c.dim = 16, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = GetParam().kv_heads, c.head_dim = 6, c.hidden_dim = 24;
  c.vocab_size = 11, c.max_seq_len = 8, c.rope_theta = 100.0, c.rope_style = GetParam().rope;
  c.qk_norm = GetParam().qk_norm, c.tied_embeddings = GetParam().tied, c.residual_scale = 0.7;
  c.validate();
  Model m(c);
  init_random(m, 42);
  Rng rng(43);
  for (const auto& s : m.table.specs()) {
    if (!s.is_matrix()) fill_uniform(m.param(s), s.numel(), rng, 0.6f, 1.4f);  // a dropped gain shows
    // Without QK-norm the init's scores are ~0.1 and attention is near uniform, leaving the q/k
    // gradients at the FD noise level; larger q/k weights make the softmax matter.
    if (s.role == ParamRole::wq || s.role == ParamRole::wk)
      for (size_t i = 0; i < s.numel(); ++i) m.param(s)[i] *= 3.0f;
  }
  Workspace ws(c, 2, 5);
  const int N = ws.B * ws.T;
  for (int n = 0; n < N; ++n) ws.inputs[n] = int32_t(rng.below(11)), ws.targets[n] = int32_t(rng.below(11));

  auto be = make_backend("ref");
  m.ensure_grads();
  const auto g0 = random_vec(m.grads.size(), 44);  // backward must add to what is there
  std::copy(g0.begin(), g0.end(), m.grads.begin());
  forward(*be, m, ws);
  backward(*be, m, ws, float(N));
  const auto grad = added(std::vector<float>(m.grads.begin(), m.grads.end()), g0);
  const Objective L = [&] {
    forward(*be, m, ws);
    return summed_loss(ws, c.vocab_size);
  };

  for (const auto& s : m.table.specs()) {
    const float* an = grad.data() + s.offset;
    const double h = kModelStep * rms(m.param(s), s.numel());
    const double floor = std::max(1e-6, rms(an, s.numel()));
    EXPECT_TRUE(check(s.name, m.param(s), an, s.numel(), L, h, floor, kModelRtol));
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, ModelGradCheck, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace anetrain::test
