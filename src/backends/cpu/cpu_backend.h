// `cpu`: the default backend. The linear layers' products go to oneDNN's matmul, in fp32 or bf16
// (mixed precision: bf16 inputs, fp32 accumulation and outputs); attention's small per-head
// products to OpenBLAS sgemm, or in bf16 on AMX tiles (attention_tiles_bf16.h).
// Everything else is fp32 loops threaded with OpenMP, written so the compiler vectorises the
// inner dimension.
#pragma once
#include <cstring>
#include <initializer_list>
#include <vector>

#include "backends/cpu/gemm.h"
#include "backends/cpu/packed_dot.h"
#include "backends/cpu/packed_prefill.h"
#include "contract/backend.h"

namespace anetrain {

// Zeroes `rows` rows of `width` floats spaced `stride` apart (one head's rows of a (B,T,H,hd) tensor).
inline void zero_strided_rows(float* p, int rows, size_t stride, int width) {
  for (int r = 0; r < rows; ++r) std::memset(p + size_t(r) * stride, 0, sizeof(float) * size_t(width));
}

// One (sequence b, kv head kh)'s rows of k, v and their gradients in the (B,T,Hkv,hd) layout,
// the gradient rows zeroed: a backward pass then sums every query head of the group into them.
struct KvHeadGrads {
  const float* k;
  const float* v;
  float* dk;
  float* dv;
};
inline KvHeadGrads kv_head_grads(const AttnShape& s, int b, int kh, const float* k, const float* v, float* dk,
                                 float* dv) {
  const size_t ldkv = size_t(s.Hkv) * s.hd, at = size_t(b) * s.T * ldkv + size_t(kh) * s.hd;
  zero_strided_rows(dk + at, s.T, ldkv, s.hd);
  zero_strided_rows(dv + at, s.T, ldkv, s.hd);
  return {k + at, v + at, dk + at, dv + at};
}

// Query and key rows per tile of the flash attention kernels (flash_attention*.cpp).
inline constexpr int kFlashTile = 64;

// Passes that write their result in bf16 (for the bf16 block stages; ffn_block.cpp): RMSNorm's
// forward as rmsnorm_fwd computes it, and y = α·x.
void rmsnorm_fwd_to_bf16(const float* x, const float* w, uint16_t* y, float* rstd, int N, int D, float eps);
void scale_to_bf16(const float* x, float alpha, uint16_t* y, size_t n);

// Not final: the ANE backends inherit its ops and override the stages. In bf16 it keeps a bf16
// copy of the weights that the optimizer refills (WeightMirror); it measures its matrix peak.
class CpuBackend : public Backend, public WeightMirror, public Profiler {
 public:
  explicit CpuBackend(Precision p = Precision::fp32) : precision_(p) {}
  std::string name() const override { return precision_ == Precision::bf16 ? "cpu-bf16" : "cpu"; }
  Capabilities caps() override;
  double matrix_peak_gflops() override;
  void sync_weights(const WeightsView& w) override;
  uint16_t* bf16_copy(const WeightsView& w) override;
  void copy_filled(uint64_t version) override { mirror_version_ = version; }
  bool holds(uint64_t version) const override { return version != 0 && mirror_version_ == version; }
  Precision precision() const { return precision_; }
  // How many times the bf16 weight copy was made by converting the whole arena (not counting the
  // optimizer's refills through the WeightMirror): tests check the refill is what is used.
  uint64_t bf16_weight_conversions() const { return mirror_conversions_; }
  void linear_fwd(const float* x, const float* W, float* y, int N, int in, int out) override;
  void linear_bwd_x(const float* dy, const float* W, float* dx, int N, int in, int out, bool accumulate) override;
  void linear_bwd_w(const float* dy, const float* x, float* dW, int N, int in, int out) override;
  void embedding_fwd(const int32_t* tokens, const float* E, float* y, int N, int D) override;
  void embedding_bwd(const int32_t* tokens, const float* dy, float* dE, int N, int D) override;
  void rmsnorm_fwd(const float* x, const float* w, float* y, float* rstd, int N, int D, float eps) override;
  void rmsnorm_bwd(const float* dy, const float* x, const float* w, const float* rstd, float* dx_acc, float* dw_acc,
                   int N, int D) override;
  void rope_fwd(float* x, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) override;
  void rope_bwd(float* dx, int B, int T, int H, int hd, int pos0, RopeStyle style, float theta) override;
  void attention_fwd(const float* q, const float* k, const float* v, float* out, float* probs,
                     const AttnShape& s) override;
  void attention_bwd(const float* dout, const float* q, const float* k, const float* v, const float* probs, float* dq,
                     float* dk, float* dv, float* dprobs, const AttnShape& s) override;
  bool attention_flash(const AttnShape& s) const override;
  void attention_flash_fwd(const float* q, const float* k, const float* v, float* out, float* lse,
                           const AttnShape& s) override;
  void attention_flash_bwd(const float* dout, const float* q, const float* k, const float* v, const float* out,
                           const float* lse, float* dq, float* dk, float* dv, const AttnShape& s) override;
  void attention_cached_fwd(const float* q, const float* k_cache, const float* v_cache, float* out, float* scores,
                            int pos0, int Tn, int Hq, int Hkv, int hd) override;
  void swiglu_fwd(const float* g, const float* u, float* h, size_t n) override;
  void swiglu_bwd(const float* dh, const float* g, const float* u, float* dg, float* du, size_t n) override;
  void residual_fwd(const float* x, const float* f, float alpha, float* y, size_t n) override;
  void residual_bwd(const float* dy, float alpha, float* df, size_t n) override;
  void cross_entropy_fwd(const float* logits, const int32_t* targets, float* losses, int N, int V) override;
  void cross_entropy_bwd(const float* logits, const int32_t* targets, float scale, float* dlogits, int N,
                         int V) override;
  void linear_fwd_packed(const float* x, int N, const MatrixRef* W, float* const* y, int parts) override;
  // bf16: each operand written in bf16 once by the pass that makes it (ffn_block.cpp,
  // attention_block.cpp); fp32: the composed stages.
  void attention_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                           AttentionSaved& s) override;
  void attention_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                           const AttentionSaved& s, const float* dout, float* dx, AttentionScratch& k) override;
  void ffn_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out, FfnSaved& s) override;
  void ffn_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                     const FfnSaved& s, const float* dout, float* dx, FfnScratch& k) override;
  void decode_layer_packed(const BlockDims& d, const PackedLayerWeights& w, float* x, float* x2, KvCacheLayer& cache,
                           int pos0, AttentionSaved& s, FfnSaved& f, float* scores) override;
  size_t classifier_scratch_floats(int N, int V) const override;
  void classifier_loss_fwd(const float* xf, const float* W, const int32_t* targets, float* losses, float* lse,
                           float* scratch, int N, int D, int V) override;
  void classifier_loss_bwd(const float* xf, const float* W, const int32_t* targets, const float* lse, float scale,
                           float* dxf, float* dW, float* scratch, int N, int D, int V) override;

 private:
  // bf16 operands: a weight inside the model's arena comes from the copy made once per weight
  // version; anything else (test buffers, the compacted classifier) is converted per call.
  const uint16_t* bf16_weight(const float* W, size_t n);
  const uint16_t* bf16_activation(const float* x, size_t n, int slot);
  // One vocabulary chunk of classifier_loss_bwd in bf16 (classifier.cpp): dlogits from the chunk's
  // logits, written in bf16 (scratch slot 0), then their two products.
  void dlogits_bf16_products(const float* xf, const float* W, const int32_t* targets, const float* lse, float scale,
                             float* dxf, float* dW, const float* logits, int N, int D, int w, int v0);
  // One projection's adapter in the bf16 block stages (adapter_bf16.cpp): the contract's
  // adapter_fwd/adapter_bwd with the input x and the gradient dy given in bf16. Use slot 0.
  void adapter_fwd_bf16(const LayerAdapters& L, const Adapter& a, const uint16_t* x, float* y, float* t, int N, int in,
                        int out);
  void adapter_bwd_bf16(const LayerAdapters& L, const Adapter& a, const Adapter& g, const uint16_t* x, const float* t,
                        const uint16_t* dy, float* dx_acc, float* u, int N, int in, int out);
  // The adapters of projections that read the same x (q, k, v; gate, up), after their base
  // products: their A products batched into one product of r·parts outputs (forward t, backward
  // dA) and their dx terms into one of depth r·parts — fewer products and one pass over dx_acc
  // instead of one per adapter. Parts without an adapter are skipped; with adapter dropout each
  // adapter runs alone (adapter_fwd_bf16/adapter_bwd_bf16), in the parts' order.
  struct AdapterFwdPart {
    const Adapter* a;
    float* y;  // (N, out) the base product's output, the adapter's term added to it
    float* t;  // (N, r) kept for the backward
    int out;
  };
  struct AdapterBwdPart {
    const Adapter* a;
    const Adapter* g;    // the adapter's gradients
    const float* t;      // the forward's t
    const uint16_t* dy;  // (N, out) the projection's output gradient in bf16
    int out;
  };
  void adapters_fwd_bf16(const LayerAdapters& L, std::initializer_list<AdapterFwdPart> parts, const uint16_t* x, int N,
                         int in);
  void adapters_bwd_bf16(const LayerAdapters& L, std::initializer_list<AdapterBwdPart> parts, const uint16_t* x,
                         float* dx_acc, float* u, int N, int in);
  const uint16_t* stacked_adapter_a(const LayerAdapters& L, const Adapter* const* as, int n, int in);

  // cpu-bf16's flash attention with bf16 tile products (flash_attention_bf16.cpp), where the CPU
  // has AMX-BF16; elsewhere (and in fp32) the flash kernels are fp32.
  bool attention_bf16_tiles() const;
  void attention_flash_fwd_bf16(const float* q, const float* k, const float* v, float* out, float* lse,
                                const AttnShape& s);
  void attention_flash_bwd_bf16(const float* dout, const float* q, const float* k, const float* v, const float* out,
                                const float* lse, float* dq, float* dk, float* dv, const AttnShape& s);

  // cos/sin of RoPE angles for positions [0, rows) and hd/2 pairs at θ.
  struct RopeTable {
    int hd = 0, rows = 0;
    float theta = 0;
    std::vector<float> cos, sin;
    void cover(int positions, int head_dim, float rope_theta);
  } rope_;

  Precision precision_;
  Gemm gemm_;
  WeightsView weights_;
  uint64_t mirror_version_ = 0;
  uint64_t mirror_conversions_ = 0;
  std::vector<uint16_t> mirror_;      // bf16 copy of weights_, valid at mirror_version_
  // adapters_fwd_bf16/adapters_bwd_bf16's batches: the parts' A stacked (r·parts, in), their
  // t or dA side by side, their bf16 u side by side (N, r·parts).
  std::vector<uint16_t> adapter_a_stack_, adapter_u16_;
  std::vector<float> adapter_wide_;
  // Conversions made per call, by slot: 0–1 activations of one product, 2 a weight outside the
  // arena, 3–5 the attention block's Q/K/V gradients. Each grows to its largest use, then stays.
  std::vector<uint16_t> scratch_[6];
  float* flash_scratch(size_t floats_per_thread);  // per-thread tiles of the flash kernels
  std::vector<float> flash_scratch_;
  std::vector<uint32_t> flash_packs_;  // the bf16 forward's K and V, packed once per call
  std::vector<float> running_max_;    // the classifier stage's online log-sum-exp, per row
  std::vector<double> running_sum_;
  PackedActivation packed_x_;  // linear_fwd_packed's activations in its weights' form
  AmxScratch amx_;             // linear_fwd_packed's Q8_0 tile products for a prompt's chunk
  VnniScratch vnni_;           // the same on AVX512-VNNI register tiles where there is no AMX
  // The fused decode layer's per-thread copies: each thread normalises and quantizes the (one)
  // activation row itself instead of waiting at a barrier for one thread to do it.
  struct alignas(64) DecodeThread {  // one cache line apart: each thread writes its own
    std::vector<float> xn;
    std::vector<float> up;  // the up projection of the rows a thread claimed
    PackedActivation act;
  };
  std::vector<DecodeThread> decode_threads_;
};

}  // namespace anetrain
