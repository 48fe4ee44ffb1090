// Generation on the ane backend: one token's projections and FFN as programs with the layer's
// weights baked in (decode_programs.cpp), compiled once per layer while the weights stay at one
// version; the cached attention itself, and prompt chunks, run on the host.
#include "backends/ane/ane_backend.h"
#include "backends/ane/ane_io.h"
#include "backends/ane/staging.h"
#include "mil/stats.h"

namespace anetrain {

using namespace ane_io;  // NOLINT: the stage files share these small helpers
using ane::KernelProgram;
using ane::LayerShape;

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
    return baked_[key] = -1;  // this layer's token runs on the host
  }
  key_of_handle_[h] = kind;
  flops_[h] = mil::program_stats(p.program).matrix_flops;
  return baked_[key] = h;
}

void AneBackend::attention_decode_on_ane(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                                         KvCacheLayer& cache, int pos0, AttentionSaved& s, float* scores) {
  const int hq = baked("decode_qkv", d, w), ho = hq >= 0 ? baked("decode_wo", d, w) : -1;
  if (ho < 0) return host().attention_block_decode(d, w, x, out, cache, pos0, s, scores);
  const int D = d.D, qd = d.Hq * d.hd, kvd = d.Hkv * d.hd;
  rmsnorm_fwd(x, w.attn_norm, s.xn, s.rstd, 1, D, d.eps);
  mil::Tensor in = fresh_input(D, ane::kAneAlign);  // the token in column 0
  ane::put_rows(in, 0, s.xn, 1, D);
  to_fp16(in);
  const mil::Tensor& qkv = eval("decode_qkv", hq, in);
  float* k_new = cache.k + size_t(pos0) * kvd;  // new keys/values go straight into the cache
  float* v_new = cache.v + size_t(pos0) * kvd;
  float* q = d.qk_norm ? s.q_raw : s.q;
  ane::get_channels(qkv, 0, q, 1, qd);
  ane::get_channels(qkv, qd, d.qk_norm ? s.k_raw : k_new, 1, kvd);
  ane::get_channels(qkv, qd + kvd, v_new, 1, kvd);
  if (d.qk_norm) {
    rmsnorm_fwd(s.q_raw, w.q_norm, s.q, s.q_rstd, d.Hq, d.hd, d.eps);
    rmsnorm_fwd(s.k_raw, w.k_norm, k_new, s.k_rstd, d.Hkv, d.hd, d.eps);
  }
  rope_fwd(s.q, 1, 1, d.Hq, d.hd, pos0, d.rope, d.theta);
  rope_fwd(k_new, 1, 1, d.Hkv, d.hd, pos0, d.rope, d.theta);
  attention_cached_fwd(s.q, cache.k, cache.v, s.attn, scores, pos0, 1, d.Hq, d.Hkv, d.hd);
  mil::Tensor ain = fresh_input(qd, ane::kAneAlign);
  ane::put_rows(ain, 0, s.attn, 1, qd);
  to_fp16(ain);
  ane::get_channels(eval("decode_wo", ho, ain), 0, s.o, 1, D);
  residual_fwd(x, s.o, d.alpha, out, size_t(D));
}

}  // namespace anetrain
