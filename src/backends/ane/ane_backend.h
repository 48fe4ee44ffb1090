// The Neural Engine backend: the four training stages (and one token of generation) run as MIL
// programs (programs.h) on an Executor — ane-sim, the hardware runtime over its fake, or the
// Neural Engine itself. Everything else is its host's, a backend it is given (the cpu backend,
// from the registry): what the seed kept on the CPU stays there — RMSNorm, residual adds (so the
// residual stream stays fp32), SwiGLU's and QK-norm's backward, every dW (and adapters' dA and
// dB: the programs run adapted projections as merged matrices), embedding, classifier, loss and
// optimizer — and a stage whose program the hardware rejects runs as the host's stage.
#pragma once
#include <chrono>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <set>
#include <tuple>
#include <vector>

#include "backends/ane/executor.h"
#include "backends/ane/programs.h"
#include "contract/forwarding_backend.h"

namespace anetrain {

class AneBackend : public ForwardingBackend, public Profiler, public CompiledPrograms {
 public:
  AneBackend(std::string name, std::unique_ptr<ane::Executor> executor, std::unique_ptr<Backend> host);
  std::string name() const override { return name_; }
  Capabilities caps() override;

  void attention_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                           AttentionSaved& s) override;
  void attention_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                           const AttentionSaved& s, const float* dout, float* dx, AttentionScratch& k) override;
  void ffn_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out, FfnSaved& s) override;
  void ffn_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                     const FfnSaved& s, const float* dout, float* dx, FfnScratch& k) override;
  // Generation, one token at a time: projections and the FFN as programs with baked weights
  // (decode_*), compiled once per layer while the weights stay at one version; the cached
  // attention itself stays on the CPU. Prompt chunks (T > 1) take the default composition.
  void attention_block_decode(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                              KvCacheLayer& cache, int pos0, AttentionSaved& s, float* scores) override;

  // Programs compiled before step 0 / the first token; a rejected program's stage runs on the
  // CPU (ane_fallback.cpp), or, with fallback off (--ane-strict), every rejection is an error.
  void prepare_training(const BlockDims& d) override;
  void prepare_decoding(const BlockDims& d, const LayerTensors& w) override;
  void allow_program_fallback(bool allowed) override { fallback_allowed_ = allowed; }
  std::vector<ProgramFallback> take_fallbacks() override;
  std::vector<ProgramCompile> take_compiles() override;

  int programs_compiled() const { return executor_->compiles(); }
  std::vector<std::string> program_keys() const;  // every program compiled so far, by its plan key
  std::vector<KernelTiming> take_kernel_timings() override;
  // The Neural Engine's fp16 peak from the chip's published figure (chip_peaks.h) on the
  // hardware; 0 where the programs are simulated (ane-sim, ane-fake), so no utilisation is
  // claimed there. Never the host CPU's: a step's products run mostly on the accelerator.
  double matrix_peak_gflops() override { return executor_->peak().gflops; }
  MatrixPeak matrix_peak() override { return executor_->peak(); }
  void sync_weights(const WeightsView& w) override;
  int weight_stagings() const { return stagings_; }  // how often weights were written into inputs

 private:
  // The stages on the Neural Engine; the public overrides above run them or their CPU fallback.
  void attention_fwd_on_ane(const BlockDims& d, const LayerTensors& w, const float* x, float* out, AttentionSaved& s);
  void attention_bwd_on_ane(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                            const AttentionSaved& s, const float* dout, float* dx, AttentionScratch& k);
  void attention_decode_on_ane(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                               KvCacheLayer& cache, int pos0, AttentionSaved& s, float* scores);
  void ffn_fwd_on_ane(const BlockDims& d, const LayerTensors& w, const float* x, float* out, FfnSaved& s);
  void ffn_bwd_on_ane(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                      const FfnSaved& s, const float* dout, float* dx, FfnScratch& k);
  int attention_program(const ane::LayerShape& ls, const char* kernel);  // its handle, from the layer plan
  // Whether `stage` ("attention", "ffn") of this shape has a rejected program.
  bool on_cpu(const BlockDims& d, const char* stage) const;
  // Records a rejected program (and, the first time, the fallback notice); throws with fallback off.
  void reject(const std::string& key, ProgramFallback what);
  // Runs `on_ane`; when a program of it is rejected there, runs `on_cpu_instead` (fallback on).
  void with_fallback(const std::function<void()>& on_ane, const std::function<void()>& on_cpu_instead);
  // Writes a rejected program's text and weights where a person can find them; returns the folder.
  std::string keep_rejected(const ane::KernelProgram& k);

  bool fallback_allowed_ = true;
  std::set<std::string> rejected_;             // program keys the executor refused
  std::vector<ProgramFallback> fallbacks_;     // since the last take_fallbacks()
  std::vector<ProgramCompile> compiled_;       // since the last take_compiles()
  std::map<int, std::string> key_of_handle_;
  std::set<int> ane_forward_layers_;           // layers whose last attention forward ran as programs

  // The handle of a program, built and compiled on first use; `key` names its shape.
  int program(const std::string& kernel, const std::string& key, const std::function<ane::KernelProgram()>& make);
  // y(N, oc) = Σᵢ xᵢ(N, ic)·Mᵢ per sequence through one product program — linear_program for one
  // x, dual_linear_program for two — whose matrices `stage` writes from column
  // `first_weight_column` of the input on; `kernel` names it in telemetry.
  void run_products(const char* kernel, const BlockDims& d, int ic, int oc, std::initializer_list<const float*> xs,
                    const std::function<void(mil::Tensor&, int first_weight_column)>& stage, float* y);
  // y = W·x with W[oc][ic] (`transposed`) or y = Wᵀ·x with W[ic][oc] as stored, as one program.
  void run_linear(const char* kernel, const BlockDims& d, int ic, int oc, const float* x, const float* W,
                  bool transposed, float* y);
  // One of two linear layers that read the same x: the gradient of its output, its weight
  // [out][in] as stored, and its weight's gradient (nullptr: a frozen weight).
  struct LinearGrad {
    const float* dy;
    const float* W;
    float* dW;
  };
  // Their backward: dx(N, in) = W₁ᵀ·dy₁ + W₂ᵀ·dy₂ as one program, then each dW += dyᵀ·x.
  void two_linears_bwd(const char* kernel, const BlockDims& d, const float* x, int in, int out, const LinearGrad& a,
                       const LinearGrad& b, float* dx);
  // dW(out, in) += dy(N, out)ᵀ·x(N, in) on the host, skipped for a frozen weight (dW nullptr).
  void weight_grad(const float* dy, const float* x, float* dW, int N, int in, int out);
  // The activations [1, C, 1, A] of program `handle`'s [1, C, 1, W] input for `kernel` at layer
  // d.layer, which the caller fills before eval(). The input is the executor's staged input for
  // (kernel, layer, program) (executor.h); `stage` writes the weights into a whole-width input
  // that the executor converts once per weight version for a known layer (the seed wrote its
  // per-layer weight surfaces once per optimizer step), every call when the layer is unknown.
  mil::Tensor& input_for(const char* kernel, int handle, const BlockDims& d, int C, int W, int A,
                         const std::function<void(mil::Tensor&)>& stage);
  // One evaluation, timed and counted under `kernel`: of the staged input when `in` came from
  // input_for, else of `in` whole. `model_flops`: the model's FLOPs it stands for (at the real,
  // unpadded sizes, attention over the causal half as model/flops.h counts it); by default the
  // program's own.
  const mil::Tensor& eval(const char* kernel, int handle, const mil::Tensor& in, double model_flops = -1);
  // Wall time of a stage section, so io_ms = section time − evaluation time.
  struct Section {
    KernelTiming& t;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    ~Section();
  };
  Section section(const char* kernel);

  std::string name_;
  std::unique_ptr<ane::Executor> executor_;
  std::map<std::string, int> handles_;
  std::map<int, double> flops_;  // matrix FLOPs of one evaluation, by handle
  std::map<std::string, KernelTiming> timings_;
  struct StagedInput {
    int id = -1;            // the executor's staged input
    uint64_t version = 0;   // of the weights it holds
    mil::Tensor activations;
  };
  std::map<std::tuple<std::string, int, int>, StagedInput> staged_;  // (kernel, layer, handle)
  std::map<const mil::Tensor*, int> staged_id_;  // input_for's activation tensors → their staged input
  mil::Tensor scratch_;  // whole-width weights on their way to the executor
  // Adapters (ane_adapters.cpp). The programs know nothing of them: they run each adapted
  // projection's W + scale·B·A (merged on the host, per layer and weights version), which gives
  // the adapted forward and, through the same matrices, the whole dx; dA and dBt come from the
  // host, from each projection's input and output gradient.
  // w itself without adapters; else w with every adapted matrix merged and no adapters.
  const LayerTensors& program_weights(const BlockDims& d, const LayerTensors& w);
  // The saved t = scale·x·Aᵀ of each adapter after a forward on the programs (what a backward,
  // the programs' or the host's, reads).
  void keep_adapter_inputs(const BlockDims& d, const LayerTensors& w, AttentionSaved& s);
  void keep_adapter_inputs(const BlockDims& d, const LayerTensors& w, FfnSaved& s);
  // dA and dBt of each adapter after a backward on the programs.
  void adapter_grads_after(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const AttentionSaved& s,
                           AttentionScratch& k);
  void adapter_grads_after(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const FfnSaved& s,
                           FfnScratch& k);
  struct MergedLayer {
    uint64_t version = 0;
    LayerTensors source{};  // the weights and adapters they were merged from
    std::vector<float> merged[7];
    LayerTensors tensors{};  // source with the merged matrices in place, adapters dropped
  };
  std::map<int, MergedLayer> merged_;  // by layer (-1: an unknown layer, merged every call)
  // Baked one-token programs: handle per (kind, layer), valid for weights at baked_version_.
  int baked(const char* kind, const BlockDims& d, const LayerTensors& w);
  std::map<std::pair<std::string, int>, int> baked_;
  std::vector<float> qkv_;      // the q, k, v product of a forward, before they are split
  std::vector<float> kv_part_;  // Wkᵀ·dk + Wvᵀ·dv of a backward, before it joins dxn
  uint64_t baked_version_ = 0;
  uint64_t weights_version_ = 0;
  int stagings_ = 0;
};

// The ane backend whose programs `executor` runs ("ane-sim", "ane-fake" or "ane";
// make_executor.h), named after it, on `host` for everything else.
std::unique_ptr<Backend> make_ane_backend(const std::string& executor, std::unique_ptr<Backend> host);

}  // namespace anetrain
