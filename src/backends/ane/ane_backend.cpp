#include "backends/ane/ane_backend.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "backends/ane/ane_io.h"
#include "backends/ane/layer_programs.h"
#include "backends/ane/make_executor.h"
#include "backends/ane/staging.h"
#include "mil/stats.h"

using namespace anetrain::ane_io;  // NOLINT: the stage files share these small helpers

namespace anetrain {

using ane::KernelProgram;
using ane::LayerShape;

AneBackend::AneBackend(std::string name, std::unique_ptr<ane::Executor> executor, std::unique_ptr<Backend> host)
    : ForwardingBackend(std::move(host)), name_(std::move(name)), executor_(std::move(executor)) {}

Capabilities AneBackend::caps() {
  Capabilities c = host().caps();
  // fp16 storage: each stage's result carries a few fp16 roundings (unit roundoff 2^-11 ≈ 4.9e-4)
  // through chains of up to ~10 ops and one softmax; 2e-2 of a tensor's scale bounds that with
  // margin while a wrong pairing, sign or transpose misses it by orders of magnitude.
  c.numerics = {true, 2e-2};
  c.fused_stages = true;
  c.profiler = this;
  c.programs = this;
  return c;
}

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
  const ane::CompileTiming ct = executor_->compile_timing(h);
  compiled_.push_back({k.name, kernel, ct.compile_ms, ct.load_ms});
  flops_[h] = mil::program_stats(k.program).matrix_flops;
  return h;
}

const mil::Tensor& AneBackend::eval(const char* kernel, int handle, const mil::Tensor& in, double model_flops) {
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
  t.model_flops += model_flops >= 0 ? model_flops : flops_[handle];
  return out;
}

AneBackend::Section::~Section() {
  t.io_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

AneBackend::Section AneBackend::section(const char* kernel) { return Section{timings_[kernel]}; }

void AneBackend::sync_weights(const WeightsView& w) {
  ForwardingBackend::sync_weights(w);
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

std::vector<ProgramCompile> AneBackend::take_compiles() { return std::exchange(compiled_, {}); }

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

// The activations sit side by side in columns [i·Tp, (i+1)·Tp) (Tp the padded token count) and
// the matrices after them; ic and T are padded to the programs' alignment with zeros.
void AneBackend::run_products(const char* kernel, const BlockDims& d, int ic, int oc,
                              std::initializer_list<const float*> xs,
                              const std::function<void(mil::Tensor&, int first_weight_column)>& stage, float* y) {
  Section timed = section(kernel);
  const int T = d.T, Tp = ane::ane_round_up(T), icp = ane::ane_round_up(ic), A = int(xs.size()) * Tp;
  const bool dual = xs.size() == 2;
  const int h = dual ? program(kernel, ane::dual_linear_key(icp, oc, Tp), [&] { return ane::dual_linear_program(icp, oc, Tp); })
                     : program(kernel, ane::linear_key(icp, oc, Tp), [&] { return ane::linear_program(icp, oc, Tp); });
  const int W = dual ? ane::dual_linear_input_width(oc, Tp) : ane::linear_input_width(oc, Tp);
  mil::Tensor& in = input_for(kernel, h, d, icp, W, A, [&](mil::Tensor& t) { stage(t, A); });
  for (int b = 0; b < d.B; ++b) {
    int col = 0;
    for (const float* x : xs) {
      ane::put_rows(in, col, x + size_t(b) * T * ic, T, ic);
      col += Tp;
    }
    activations_to_fp16(in, A);
    ane::get_channels(eval(kernel, h, in, 2.0 * T * ic * oc * double(xs.size())), 0, y + size_t(b) * T * oc, T, oc);
  }
}

void AneBackend::run_linear(const char* kernel, const BlockDims& d, int ic, int oc, const float* x, const float* W,
                            bool transposed, float* y) {
  run_products(kernel, d, ic, oc, {x}, [&](mil::Tensor& t, int col) {
    if (transposed) ane::put_transposed(t, col, W, oc, ic);
    else ane::put_as_stored(t, col, W, ic, oc);
  }, y);
}

void AneBackend::two_linears_bwd(const char* kernel, const BlockDims& d, const float* x, int in, int out,
                                 const LinearGrad& a, const LinearGrad& b, float* dx) {
  run_products(kernel, d, out, in, {a.dy, b.dy}, [&](mil::Tensor& t, int col) {
    ane::put_as_stored(t, col, a.W, out, in);
    ane::put_as_stored(t, col + in, b.W, out, in);
  }, dx);
  weight_grad(a.dy, x, a.dW, d.N(), in, out);
  weight_grad(b.dy, x, b.dW, d.N(), in, out);
}

void AneBackend::weight_grad(const float* dy, const float* x, float* dW, int N, int in, int out) {
  if (dW) linear_bwd_w(dy, x, dW, N, in, out);
}

std::unique_ptr<Backend> make_ane_backend(const std::string& executor, std::unique_ptr<Backend> host) {
  return std::make_unique<AneBackend>(executor, ane::make_executor(executor), std::move(host));
}

}  // namespace anetrain
