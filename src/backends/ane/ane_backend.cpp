#include "backends/ane/ane_backend.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "backends/ane/ane_io.h"
#include "backends/ane/layer_programs.h"
#include "backends/ane/make_executor.h"
#include "backends/ane/staging.h"
#include "mil/stats.h"

using namespace anetrain::ane_io;  // NOLINT: the stage files share these small helpers

namespace anetrain {

using ane::KernelProgram;
using ane::LayerShape;

AneBackend::AneBackend(std::string name, std::unique_ptr<ane::Executor> executor)
    : name_(std::move(name)), executor_(std::move(executor)) {}

std::vector<std::string> AneBackend::program_keys() const {
  std::vector<std::string> keys;
  for (const auto& [key, handle] : handles_) keys.push_back(key);
  return keys;
}

int AneBackend::program(const std::string& kernel, const std::string& key,
                        const std::function<KernelProgram()>& make) {
  auto it = handles_.find(key);
  if (it != handles_.end()) return it->second;
  // A stage that reaches a program rejected earlier (a one-token call off the baked path, say)
  // falls back like the first time.
  if (rejected_.count(key)) throw ane::ProgramRejected("program " + key + " was rejected before");
  KernelProgram k = make();
  int h = -1;
  try {
    h = executor_->compile(k);
  } catch (const ane::ProgramRejected& e) {
    reject(key, {k.name, kernel, "compile", e.what(), keep_rejected(k)});
    throw;
  }
  handles_[key] = h;
  key_of_handle_[h] = key;
  flops_[h] = mil::program_stats(k.program).matrix_flops;
  return h;
}

const mil::Tensor& AneBackend::eval(const char* kernel, int handle, const mil::Tensor& in) {
  KernelTiming& t = timings_[kernel];
  const auto t0 = std::chrono::steady_clock::now();
  const auto staged = staged_id_.find(&in);
  const mil::Tensor* result = nullptr;
  try {
    result = staged != staged_id_.end() ? &executor_->evaluate_staged(staged->second, in)
                                        : &executor_->evaluate(handle, in);
  } catch (const ane::ProgramRejected& e) {
    const auto key = key_of_handle_.find(handle);
    reject(key != key_of_handle_.end() ? key->second : kernel, {kernel, kernel, "evaluate", e.what(), ""});
    throw;
  }
  const mil::Tensor& out = *result;
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
  weights_version_ = w.version;  // staged inputs compare theirs at their next use
}

mil::Tensor& AneBackend::input_for(const char* kernel, int handle, const BlockDims& d, int C, int W, int A,
                                   const std::function<void(mil::Tensor&)>& stage) {
  const bool known = d.layer >= 0 && weights_version_ != 0;
  StagedInput& s = staged_[{kernel, known ? d.layer : -1, handle}];
  if (s.id < 0) {
    s.id = executor_->open_staged(handle, A);
    s.activations = fresh_input(C, A);
    staged_id_[&s.activations] = s.id;
  }
  if (!known || s.version != weights_version_) {
    if (scratch_.type.shape == mil::Shape{1, C, 1, W}) std::fill(scratch_.data->begin(), scratch_.data->end(), 0.0f);
    else scratch_ = fresh_input(C, W);  // zeros: the padding between and after the weights
    stage(scratch_);
    executor_->write_weights(s.id, scratch_);
    s.version = weights_version_;
    ++stagings_;
  }
  return s.activations;
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

// y(N, oc) = x(N, ic)·M per sequence through linear_program, M staged by `stage` at column
// `Tp` (the padded token count); ic and T are padded to the programs' alignment with zeros.
void AneBackend::run_product(const char* kernel, const BlockDims& d, int ic, int oc, const float* x,
                             const std::function<void(mil::Tensor&, int Tp)>& stage, float* y) {
  Section timed = section(kernel);
  const int T = d.T, Tp = ane::ane_round_up(T), icp = ane::ane_round_up(ic);
  int h = program(kernel, ane::linear_key(icp, oc, Tp),
                  [&] { return ane::linear_program(icp, oc, Tp); });
  mil::Tensor& in =
      input_for(kernel, h, d, icp, ane::linear_input_width(oc, Tp), Tp, [&](mil::Tensor& t) { stage(t, Tp); });
  for (int b = 0; b < d.B; ++b) {
    ane::put_rows(in, 0, x + size_t(b) * T * ic, T, ic);
    activations_to_fp16(in, T);
    ane::get_channels(eval(kernel, h, in), 0, y + size_t(b) * T * oc, T, oc);
  }
}

// With `transposed` the weight is W[oc][ic] (y = W·x, staged as Wᵀ), otherwise W[ic][oc] (y = Wᵀ·x,
// as stored).
void AneBackend::run_linear(const char* kernel, const BlockDims& d, int ic, int oc, const float* x, const float* W,
                            bool transposed, float* y) {
  run_product(kernel, d, ic, oc, x, [&](mil::Tensor& t, int Tp) {
    if (transposed) ane::put_transposed(t, Tp, W, oc, ic);
    else ane::put_as_stored(t, Tp, W, ic, oc);
  }, y);
}

// y = W1ᵀ·x1 + W2ᵀ·x2 per sequence (W1, W2 [ic][oc] as stored) through dual_linear_program.
void AneBackend::run_dual(const char* kernel, const BlockDims& d, int ic, int oc, const float* x1, const float* W1,
                          const float* x2, const float* W2, float* y) {
  Section timed = section(kernel);
  const int T = d.T, Tp = ane::ane_round_up(T), icp = ane::ane_round_up(ic);
  int h = program(kernel, ane::dual_linear_key(icp, oc, Tp),
                  [&] { return ane::dual_linear_program(icp, oc, Tp); });
  mil::Tensor& in = input_for(kernel, h, d, icp, ane::dual_linear_input_width(oc, Tp), 2 * Tp, [&](mil::Tensor& t) {
    ane::put_as_stored(t, 2 * Tp, W1, ic, oc);
    ane::put_as_stored(t, 2 * Tp + oc, W2, ic, oc);
  });
  for (int b = 0; b < d.B; ++b) {
    const size_t r = size_t(b) * T * ic;
    ane::put_rows(in, 0, x1 + r, T, ic);
    ane::put_rows(in, Tp, x2 + r, T, ic);
    activations_to_fp16(in, 2 * Tp);
    ane::get_channels(eval(kernel, h, in), 0, y + size_t(b) * T * oc, T, oc);
  }
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
  if (rejected_.count(kind)) return -1;  // its evaluation failed once: generation runs on the CPU
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
  int h = -1;
  try {
    h = executor_->compile(p);
  } catch (const ane::ProgramRejected& e) {
    reject(p.name, {p.name, kind, "compile", e.what(), keep_rejected(p)});
    if (!fallback_allowed_) throw;
    return baked_[key] = -1;  // this layer's token runs the default composition
  }
  key_of_handle_[h] = kind;
  flops_[h] = mil::program_stats(p.program).matrix_flops;
  return baked_[key] = h;
}

void AneBackend::ffn_fwd_on_ane(const BlockDims& d, const LayerTensors& w, const float* x, float* out, FfnSaved& s) {
  const LayerShape ls = LayerShape::from(d);
  const int N = d.N(), T = d.T, D = d.D, F = d.F;
  rmsnorm_fwd(x, w.ffn_norm, s.xn, s.rstd, N, D, d.eps);
  if (const int hb = baked("decode_ffn", d, w); hb >= 0) {  // one token of generation
    mil::Tensor in = fresh_input(D, ane::kAneAlign);  // the token in column 0
    ane::put_rows(in, 0, s.xn, 1, D);
    to_fp16(in);
    const mil::Tensor& o = eval("decode_ffn", hb, in);
    ane::get_channels(o, 0, s.f, 1, D);
    ane::get_channels(o, D, s.g, 1, F);
    ane::get_channels(o, D + F, s.u, 1, F);
    ane::get_channels(o, D + 2 * F, s.h, 1, F);
    residual_fwd(x, s.f, d.alpha, out, size_t(D));
    return;
  }
  const int Tp = ane::ane_round_up(T), Dp = ane::ane_round_up(D), Fp = ane::ane_round_up(F);
  if (!ane::ffn_fused(ls)) {
    // Too wide for one input of fused weights: gate, up and down as three products, SwiGLU here.
    run_linear("ffn_gate", d, D, F, s.xn, w.w_gate, true, s.g);
    run_linear("ffn_up", d, D, F, s.xn, w.w_up, true, s.u);
    swiglu_fwd(s.g, s.u, s.h, size_t(N) * F);
    run_linear("ffn_down", d, F, D, s.h, w.w_down, true, s.f);
    residual_fwd(x, s.f, d.alpha, out, size_t(N) * D);
    return;
  }
  std::optional<Section> timed(section("ffn_fwd"));
  const ane::PlannedProgram plan = ane::planned_program(ls, "ffn_fwd");
  int h = program(plan.kernel, plan.key, plan.make);
  mil::Tensor& in = input_for("ffn_fwd", h, d, Dp, Tp + 3 * Fp, Tp, [&](mil::Tensor& t) {
    ane::put_transposed(t, Tp, w.w_gate, F, D);
    ane::put_transposed(t, Tp + Fp, w.w_up, F, D);
    ane::put_as_stored(t, Tp + 2 * Fp, w.w_down, D, F);
  });
  for (int b = 0; b < d.B; ++b) {
    const size_t r = size_t(b) * T;
    ane::put_rows(in, 0, s.xn + r * D, T, D);
    activations_to_fp16(in, T);
    const mil::Tensor& o = eval("ffn_fwd", h, in);
    ane::get_channels(o, 0, s.f + r * D, T, D);
    ane::get_channels(o, Dp, s.g + r * F, T, F);
    ane::get_channels(o, Dp + Fp, s.u + r * F, T, F);
    ane::get_channels(o, Dp + 2 * Fp, s.h + r * F, T, F);
  }
  timed.reset();
  residual_fwd(x, s.f, d.alpha, out, size_t(N) * D);
}

void AneBackend::ffn_bwd_on_ane(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                                const FfnSaved& s, const float* dout, float* dx, FfnScratch& k) {
  const int N = d.N(), D = d.D, F = d.F;
  // Both programs run before any weight gradient accumulates: a rejected one leaves g as it was.
  residual_bwd(dout, d.alpha, k.dres, size_t(N) * D);
  run_linear("down_bwd", d, D, F, k.dres, w.w_down, false, k.dh);  // dh = W_downᵀ·dres
  swiglu_bwd(k.dh, s.g, s.u, k.dg, k.du, size_t(N) * F);
  run_dual("gate_up_bwd", d, F, D, k.dg, w.w_gate, k.du, w.w_up, k.dxn);  // dxn = W_gateᵀ·dg + W_upᵀ·du
  linear_bwd_w(k.dres, s.h, g.w_down, N, F, D);
  linear_bwd_w(k.dg, s.xn, g.w_gate, N, D, F);
  linear_bwd_w(k.du, s.xn, g.w_up, N, D, F);
  std::memcpy(dx, dout, sizeof(float) * size_t(N) * D);
  rmsnorm_bwd(k.dxn, x, w.ffn_norm, s.rstd, dx, g.ffn_norm, N, D);
}

std::unique_ptr<Backend> make_ane_backend(const std::string& executor) {
  return std::make_unique<AneBackend>(executor, ane::make_executor(executor));
}

std::unique_ptr<Backend> make_ane_sim_backend() { return make_ane_backend("ane-sim"); }
std::unique_ptr<Backend> make_ane_fake_backend() { return make_ane_backend("ane-fake"); }
#if defined(ANETRAIN_HAVE_ANE)
std::unique_ptr<Backend> make_ane_backend() { return make_ane_backend("ane"); }
#endif

}  // namespace anetrain
