#include "backends/ane_sim/ane_backend.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "ane/kernels/staging.h"
#include "ane/mil/stats.h"
#include "ane/runtime/runtime.h"
#include "ane/sim/fp16.h"

namespace anetrain {

using ane::KernelProgram;
using ane::LayerShape;

namespace {

mil::Type f16(int C, int W) { return mil::Type::of(mil::ElemType::fp16, {1, C, 1, W}); }

sim::Tensor fresh_input(int C, int W) { return sim::Tensor::zeros(f16(C, W)); }

void to_fp16(sim::Tensor& t) { sim::round_to_fp16(t.ptr(), t.numel()); }

// Rounds columns [0, T) of every channel: the activations just written beside staged weights.
void activations_to_fp16(sim::Tensor& t, int T) {
  const int64_t C = t.type.shape[1], W = t.type.shape[3];
  for (int64_t c = 0; c < C; ++c) sim::round_to_fp16(t.ptr() + c * W, size_t(T));
}

std::string shape_key(const char* what, const LayerShape& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s T%d D%d H%d/%d hd%d F%d eps%g theta%g rope%d qk%d", what, s.T, s.D, s.Hq, s.Hkv, s.hd,
                s.F, double(s.eps), double(s.theta), int(s.rope), int(s.qk_norm));
  return buf;
}

}  // namespace

AneBackend::AneBackend(std::string name, std::unique_ptr<ane::Executor> executor)
    : name_(std::move(name)), executor_(std::move(executor)) {}

template <typename Make>
int AneBackend::program(const std::string& key, Make&& make) {
  auto it = handles_.find(key);
  if (it != handles_.end()) return it->second;
  KernelProgram k = make();
  int h = handles_[key] = executor_->compile(k);
  flops_[h] = mil::program_stats(k.program).matrix_flops;
  return h;
}

const sim::Tensor& AneBackend::eval(const char* kernel, int handle, const sim::Tensor& in) {
  KernelTiming& t = timings_[kernel];
  const auto t0 = std::chrono::steady_clock::now();
  const sim::Tensor& out = executor_->evaluate(handle, in);
  t.eval_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  t.calls++;
  t.flops += flops_[handle];
  return out;
}

AneBackend::Section::~Section() {
  t.io_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

AneBackend::Section AneBackend::section(const char* kernel) { return Section{timings_[kernel]}; }

void AneBackend::sync_weights(const WeightsView& w) {
  CpuBackend::sync_weights(w);
  if (w.version == weights_version_) return;
  staged_.clear();
  weights_version_ = w.version;
}

sim::Tensor& AneBackend::input_for(const char* kernel, const BlockDims& d, int C, int W,
                                   const std::function<void(sim::Tensor&)>& stage) {
  sim::Tensor* t = &scratch_;
  if (d.layer >= 0 && weights_version_ != 0) {
    auto key = std::make_pair(std::string(kernel), d.layer);
    auto it = staged_.find(key);
    const mil::Shape want = {1, C, 1, W};
    if (it != staged_.end() && it->second.type.shape == want) return it->second;
    t = &staged_[key];
  }
  *t = fresh_input(C, W);
  stage(*t);
  to_fp16(*t);
  ++stagings_;
  return *t;
}

std::vector<KernelTiming> AneBackend::take_kernel_timings() {
  std::vector<KernelTiming> out;
  for (auto& [name, t] : timings_) {
    KernelTiming k = t;
    k.name = name;
    k.io_ms = std::max(0.0, t.io_ms - t.eval_ms);  // sections hold both; io is the rest
    out.push_back(k);
  }
  timings_.clear();
  return out;
}

// y(N, oc) = x(N, ic)·Mᵀ... per sequence through linear_program(ic, oc, T): with `transposed`
// the weight is W[oc][ic] (y = W·x, staged as Wᵀ), otherwise W[ic][oc] (y = Wᵀ·x, as stored).
void AneBackend::run_linear(const char* kernel, const BlockDims& d, int ic, int oc, const float* x, const float* W,
                            bool transposed, float* y) {
  Section timed = section(kernel);
  const int T = d.T;
  int h = program("linear " + std::to_string(ic) + "x" + std::to_string(oc) + " T" + std::to_string(T),
                  [&] { return ane::linear_program(ic, oc, T); });
  sim::Tensor& in = input_for(kernel, d, ic, T + oc, [&](sim::Tensor& t) {
    if (transposed) ane::put_transposed(t, T, W, oc, ic);
    else ane::put_as_stored(t, T, W, ic, oc);
  });
  for (int b = 0; b < d.B; ++b) {
    ane::put_rows(in, 0, x + size_t(b) * T * ic, T, ic);
    activations_to_fp16(in, T);
    ane::get_channels(eval(kernel, h, in), 0, y + size_t(b) * T * oc, T, oc);
  }
}

void AneBackend::attention_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                                     AttentionSaved& s) {
  const LayerShape ls = LayerShape::from(d);
  const int N = d.N(), T = d.T, D = d.D, qd = ls.qd(), kvd = ls.kvd();
  rmsnorm_fwd(x, w.attn_norm, s.xn, s.rstd, N, D, d.eps);
  std::optional<Section> timed(section("attention_fwd"));
  int h = program(shape_key("attention_fwd", ls), [&] { return ane::attention_fwd_program(ls); });
  const int W = ane::attention_fwd_input_width(ls);
  sim::Tensor& in = input_for("attention_fwd", d, D, W, [&](sim::Tensor& t) {
    ane::put_transposed(t, T, w.wq, qd, D);
    ane::put_transposed(t, T + qd, w.wk, kvd, D);
    ane::put_transposed(t, T + qd + kvd, w.wv, kvd, D);
    if (d.qk_norm) {
      ane::put_column(t, W - 2, w.q_norm, d.hd);
      ane::put_column(t, W - 1, w.k_norm, d.hd);
    }
  });
  for (int b = 0; b < d.B; ++b) {
    const size_t r = size_t(b) * T;
    ane::put_rows(in, 0, s.xn + r * D, T, D);
    activations_to_fp16(in, T);
    const sim::Tensor& o = eval("attention_fwd", h, in);
    int ch = 0;
    auto take = [&](float* dst, int C) {
      ane::get_channels(o, ch, dst + r * C, T, C);
      ch += C;
    };
    take(s.attn, qd);
    take(s.q, qd);
    take(s.k, kvd);
    take(s.v, kvd);
    if (d.qk_norm) {
      take(s.q_raw, qd);
      take(s.k_raw, kvd);
      take(s.q_rstd, d.Hq);  // per (token, head): rows of Hq values, as the cpu ops keep them
      take(s.k_rstd, d.Hkv);
    }
  }
  timed.reset();
  run_linear("wo_fwd", d, qd, D, s.attn, w.wo, true, s.o);
  residual_fwd(x, s.o, d.alpha, out, size_t(N) * D);
}

void AneBackend::attention_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                                     const AttentionSaved& s, const float* dout, float* dx, AttentionScratch& k) {
  const LayerShape ls = LayerShape::from(d);
  const int N = d.N(), T = d.T, D = d.D, qd = ls.qd(), kvd = ls.kvd();
  residual_bwd(dout, d.alpha, k.dres, size_t(N) * D);
  linear_bwd_w(k.dres, s.attn, g.wo, N, qd, D);
  run_linear("wo_bwd", d, D, qd, k.dres, w.wo, false, k.dattn);  // dattn = Woᵀ·dres
  std::optional<Section> timed(section("attention_bwd"));
  int h = program(shape_key("attention_bwd", ls), [&] { return ane::attention_bwd_program(ls); });
  sim::Tensor in = fresh_input(2 * qd + 2 * kvd, T);
  for (int b = 0; b < d.B; ++b) {
    const size_t r = size_t(b) * T;
    ane::put_channels(in, 0, s.q + r * qd, T, qd);
    ane::put_channels(in, qd, s.k + r * kvd, T, kvd);
    ane::put_channels(in, qd + kvd, s.v + r * kvd, T, kvd);
    ane::put_channels(in, qd + 2 * kvd, k.dattn + r * qd, T, qd);
    to_fp16(in);
    const sim::Tensor& o = eval("attention_bwd", h, in);
    ane::get_channels(o, 0, k.dq + r * qd, T, qd);
    ane::get_channels(o, qd, k.dk + r * kvd, T, kvd);
    ane::get_channels(o, qd + kvd, k.dv + r * kvd, T, kvd);
  }
  timed.reset();
  const auto [dq, dk] = qk_norm_bwd(*this, d, w, g, s, k);
  linear_bwd_w(dq, s.xn, g.wq, N, D, qd);
  linear_bwd_w(dk, s.xn, g.wk, N, D, kvd);
  linear_bwd_w(k.dv, s.xn, g.wv, N, D, kvd);
  // dxn = Wqᵀ·dq + (Wkᵀ·dk + Wvᵀ·dv): two programs (their inputs have different channel counts).
  run_linear("q_bwd", d, qd, D, dq, w.wq, false, k.dxn);
  Section kv_timed = section("kv_bwd");
  int hkv = program("dual_linear " + std::to_string(kvd) + "x" + std::to_string(D) + " T" + std::to_string(T),
                    [&] { return ane::dual_linear_program(kvd, D, T); });
  sim::Tensor& kv = input_for("kv_bwd", d, kvd, 2 * T + 2 * D, [&](sim::Tensor& t) {
    ane::put_as_stored(t, 2 * T, w.wk, kvd, D);
    ane::put_as_stored(t, 2 * T + D, w.wv, kvd, D);
  });
  std::vector<float> part(size_t(T) * D);
  for (int b = 0; b < d.B; ++b) {
    const size_t r = size_t(b) * T;
    ane::put_rows(kv, 0, dk + r * kvd, T, kvd);
    ane::put_rows(kv, T, k.dv + r * kvd, T, kvd);
    activations_to_fp16(kv, 2 * T);
    ane::get_channels(eval("kv_bwd", hkv, kv), 0, part.data(), T, D);
    float* dst = k.dxn + r * D;
    for (size_t i = 0; i < part.size(); ++i) dst[i] += part[i];
  }
  std::memcpy(dx, dout, sizeof(float) * size_t(N) * D);  // the skip path
  rmsnorm_bwd(k.dxn, x, w.attn_norm, s.rstd, dx, g.attn_norm, N, D);
}

// Budget for baked programs: three per layer, leaving room under the runtime's guard
// (kSafeCompiles = 110) for the dynamic programs of prompt chunks.
constexpr int kBakedBudget = 90;

int AneBackend::baked(const char* kind, const BlockDims& d, const LayerTensors& w) {
  if (d.T != 1 || d.layer < 0 || weights_version_ == 0) return -1;
  if (baked_version_ != weights_version_) {
    // Baked weights are only for weights that stay put (generation). If they moved after a bake,
    // recompiling every step would exhaust the compile budget: use the dynamic programs instead.
    if (baked_version_ != 0) return -1;
    baked_version_ = weights_version_;
  }
  auto key = std::make_pair(std::string(kind), d.layer);
  auto it = baked_.find(key);
  if (it != baked_.end()) return it->second;
  if (executor_->compiles() >= kBakedBudget) return -1;
  const LayerShape ls = LayerShape::from(d);
  const ane::LayerWeights lw{w.wq, w.wk, w.wv, w.wo, w.w_gate, w.w_up, w.w_down};
  const std::string k = kind;
  KernelProgram p = k == "decode_qkv" ? ane::decode_qkv_program(ls, lw, d.layer)
                  : k == "decode_wo"  ? ane::decode_wo_program(ls, lw, d.layer)
                                      : ane::decode_ffn_program(ls, lw, d.layer);
  int h = executor_->compile(p);
  flops_[h] = mil::program_stats(p.program).matrix_flops;
  return baked_[key] = h;
}

void AneBackend::attention_block_decode(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                                        KvCacheLayer& cache, int pos0, AttentionSaved& s, float* scores) {
  const int hq = baked("decode_qkv", d, w), ho = hq >= 0 ? baked("decode_wo", d, w) : -1;
  if (ho < 0) return Backend::attention_block_decode(d, w, x, out, cache, pos0, s, scores);
  const int D = d.D, qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;
  rmsnorm_fwd(x, w.attn_norm, s.xn, s.rstd, 1, D, d.eps);
  sim::Tensor in = fresh_input(D, 1);
  std::copy(s.xn, s.xn + D, in.ptr());
  to_fp16(in);
  const sim::Tensor& qkv = eval("decode_qkv", hq, in);
  float* k_new = cache.k + size_t(pos0) * kvd;  // new keys/values go straight into the cache
  float* v_new = cache.v + size_t(pos0) * kvd;
  float* q = d.qk_norm ? s.q_raw : s.q;
  float* k_dst = d.qk_norm ? s.k_raw : k_new;
  std::copy(qkv.ptr(), qkv.ptr() + qd, q);
  std::copy(qkv.ptr() + qd, qkv.ptr() + qd + kvd, k_dst);
  std::copy(qkv.ptr() + qd + kvd, qkv.ptr() + qd + 2 * kvd, v_new);
  if (d.qk_norm) {
    rmsnorm_fwd(s.q_raw, w.q_norm, s.q, s.q_rstd, d.Hq, d.hd, d.eps);
    rmsnorm_fwd(s.k_raw, w.k_norm, k_new, s.k_rstd, d.Hkv, d.hd, d.eps);
  }
  rope_fwd(s.q, 1, 1, d.Hq, d.hd, pos0, d.rope, d.theta);
  rope_fwd(k_new, 1, 1, d.Hkv, d.hd, pos0, d.rope, d.theta);
  attention_cached_fwd(s.q, cache.k, cache.v, s.attn, scores, pos0, 1, d.Hq, d.Hkv, d.hd);
  sim::Tensor ain = fresh_input(qd, 1);
  std::copy(s.attn, s.attn + qd, ain.ptr());
  to_fp16(ain);
  const sim::Tensor& o = eval("decode_wo", ho, ain);
  std::copy(o.ptr(), o.ptr() + D, s.o);
  residual_fwd(x, s.o, d.alpha, out, size_t(D));
}

void AneBackend::ffn_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out, FfnSaved& s) {
  const LayerShape ls = LayerShape::from(d);
  const int N = d.N(), T = d.T, D = d.D, F = d.F;
  rmsnorm_fwd(x, w.ffn_norm, s.xn, s.rstd, N, D, d.eps);
  if (const int hb = baked("decode_ffn", d, w); hb >= 0) {  // one token of generation
    sim::Tensor in = fresh_input(D, 1);
    std::copy(s.xn, s.xn + D, in.ptr());
    to_fp16(in);
    const sim::Tensor& o = eval("decode_ffn", hb, in);
    std::copy(o.ptr(), o.ptr() + D, s.f);
    std::copy(o.ptr() + D, o.ptr() + D + F, s.g);
    std::copy(o.ptr() + D + F, o.ptr() + D + 2 * F, s.u);
    std::copy(o.ptr() + D + 2 * F, o.ptr() + D + 3 * F, s.h);
    residual_fwd(x, s.f, d.alpha, out, size_t(D));
    return;
  }
  std::optional<Section> timed(section("ffn_fwd"));
  int h = program(shape_key("ffn_fwd", ls), [&] { return ane::ffn_fwd_program(ls); });
  sim::Tensor& in = input_for("ffn_fwd", d, D, T + 3 * F, [&](sim::Tensor& t) {
    ane::put_transposed(t, T, w.w_gate, F, D);
    ane::put_transposed(t, T + F, w.w_up, F, D);
    ane::put_as_stored(t, T + 2 * F, w.w_down, D, F);
  });
  for (int b = 0; b < d.B; ++b) {
    const size_t r = size_t(b) * T;
    ane::put_rows(in, 0, s.xn + r * D, T, D);
    activations_to_fp16(in, T);
    const sim::Tensor& o = eval("ffn_fwd", h, in);
    ane::get_channels(o, 0, s.f + r * D, T, D);
    ane::get_channels(o, D, s.g + r * F, T, F);
    ane::get_channels(o, D + F, s.u + r * F, T, F);
    ane::get_channels(o, D + 2 * F, s.h + r * F, T, F);
  }
  timed.reset();
  residual_fwd(x, s.f, d.alpha, out, size_t(N) * D);
}

void AneBackend::ffn_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                               const FfnSaved& s, const float* dout, float* dx, FfnScratch& k) {
  const int N = d.N(), T = d.T, D = d.D, F = d.F;
  residual_bwd(dout, d.alpha, k.dres, size_t(N) * D);
  linear_bwd_w(k.dres, s.h, g.w_down, N, F, D);
  run_linear("down_bwd", d, D, F, k.dres, w.w_down, false, k.dh);  // dh = W_downᵀ·dres
  swiglu_bwd(k.dh, s.g, s.u, k.dg, k.du, size_t(N) * F);
  linear_bwd_w(k.dg, s.xn, g.w_gate, N, D, F);
  linear_bwd_w(k.du, s.xn, g.w_up, N, D, F);
  Section timed = section("gate_up_bwd");
  int h = program("dual_linear " + std::to_string(F) + "x" + std::to_string(D) + " T" + std::to_string(T),
                  [&] { return ane::dual_linear_program(F, D, T); });
  sim::Tensor& in = input_for("gate_up_bwd", d, F, 2 * T + 2 * D, [&](sim::Tensor& t) {
    ane::put_as_stored(t, 2 * T, w.w_gate, F, D);
    ane::put_as_stored(t, 2 * T + D, w.w_up, F, D);
  });
  for (int b = 0; b < d.B; ++b) {
    const size_t r = size_t(b) * T;
    ane::put_rows(in, 0, k.dg + r * F, T, F);
    ane::put_rows(in, T, k.du + r * F, T, F);
    activations_to_fp16(in, 2 * T);
    ane::get_channels(eval("gate_up_bwd", h, in), 0, k.dxn + r * D, T, D);
  }
  std::memcpy(dx, dout, sizeof(float) * size_t(N) * D);
  rmsnorm_bwd(k.dxn, x, w.ffn_norm, s.rstd, dx, g.ffn_norm, N, D);
}

std::unique_ptr<Backend> make_ane_fake_backend() {
  return std::make_unique<AneBackend>("ane-fake", std::make_unique<ane::AneRuntime>(ane::make_fake_api()));
}

#if defined(ANETRAIN_HAVE_ANE)
std::unique_ptr<Backend> make_ane_backend() {
  return std::make_unique<AneBackend>("ane", std::make_unique<ane::AneRuntime>(ane::make_apple_api()));
}
#endif

std::unique_ptr<Backend> make_ane_sim_backend() {
  return std::make_unique<AneBackend>("ane-sim", std::make_unique<ane::SimExecutor>());
}

}  // namespace anetrain
