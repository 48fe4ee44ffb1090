// A program the Neural Engine rejects costs its stage, not the run: the stage runs as the host
// backend's instead (the cpu backend's; with a notice for telemetry), and every later call of
// that stage at that shape goes straight to the host. Programs are compiled up front (prepare_training /
// prepare_decoding), so rejections at compile or load time are all known, and reported together,
// before step 0; one at evaluate time is caught in the stage and the stage redone on the CPU.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "backends/ane/layer_programs.h"
#include "mil/printer.h"
#include "backends/ane/ane_backend.h"
#include "core/error.h"
#include "core/mapped_file.h"

namespace anetrain {

namespace fs = std::filesystem;

std::string AneBackend::keep_rejected(const ane::KernelProgram& k) {
  // Outside any run folder and never removed by anetrain: the thing to attach to a bug report.
  std::error_code ec;
  const fs::path dir = fs::temp_directory_path(ec) / ("anetrain-rejected-" + std::to_string(::getpid())) / k.name;
  try {
    fs::create_directories(dir / "weights");
    const std::string text = mil::print_program(k.program);
    write_file_atomic((dir / "model.mil").string(), text.data(), text.size());
    for (const auto& [rel, bytes] : k.blobs) write_file_atomic((dir / rel).string(), bytes.data(), bytes.size());
  } catch (const std::exception&) {
    return "";  // keeping a copy is a courtesy; the rejection itself is what matters
  }
  return dir.string();
}

void AneBackend::reject(const std::string& key, ProgramFallback what) {
  if (!fallback_allowed_) return;  // the caller's exception propagates: --ane-strict
  if (rejected_.insert(key).second) fallbacks_.push_back(std::move(what));
}

bool AneBackend::on_cpu(const BlockDims& d, const char* stage) const {
  if (rejected_.empty()) return false;
  for (const auto& p : ane::training_programs(ane::LayerShape::from(d)))
    if (p.stage == stage && rejected_.count(p.key)) return true;
  return false;
}

void AneBackend::with_fallback(const std::function<void()>& on_ane, const std::function<void()>& on_cpu_instead) {
  try {
    on_ane();
    return;
  } catch (const ane::ProgramRejected&) {
    // Only the accelerator's refusal falls back; any other error (and, under --ane-strict, the
    // refusal too) is the caller's.
    if (!fallback_allowed_) throw;
  }
  on_cpu_instead();
}

void AneBackend::prepare_training(const BlockDims& d) {
  std::string failures;
  int n = 0;
  for (const auto& p : ane::training_programs(ane::LayerShape::from(d))) {
    try {
      program(p.kernel, p.key, p.make);
    } catch (const ane::ProgramRejected& e) {
      failures += "\n  " + p.kernel + ": " + e.what();
      ++n;
    }
  }
  if (n && !fallback_allowed_)
    fail("the Neural Engine rejected " + std::to_string(n) + " program(s) (--ane-strict):" + failures +
         "\nhint: without --ane-strict their stages run on the CPU; `anetrain ane dump` writes the programs for a report");
}

void AneBackend::prepare_decoding(const BlockDims& d, const LayerTensors& w) {
  // With adapters the baked matrices are the merged ones, as the dynamic programs' are.
  const LayerTensors& pw = program_weights(d, w);
  for (const char* kind : {"decode_qkv", "decode_wo", "decode_ffn"}) baked(kind, d, pw);
}

std::vector<ProgramFallback> AneBackend::take_fallbacks() {
  std::vector<ProgramFallback> out;
  out.swap(fallbacks_);
  return out;
}

void AneBackend::attention_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                                     AttentionSaved& s) {
  auto cpu = [&] {
    host().attention_block_fwd(d, w, x, out, s);
    ane_forward_layers_.erase(d.layer);
  };
  if (on_cpu(d, "attention") || w.lora.dropout.active()) return cpu();
  with_fallback([&] {
    attention_fwd_on_ane(d, program_weights(d, w), x, out, s);
    keep_adapter_inputs(d, w, s);
    ane_forward_layers_.insert(d.layer);
  }, cpu);
}

void AneBackend::attention_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                                     const AttentionSaved& s, const float* dout, float* dx, AttentionScratch& k) {
  // The programs' forward keeps no probabilities: a backward on the CPU after it redoes the
  // forward on the CPU first (the saved buffers are this layer's own, written by a non-const
  // forward and read by nothing after this backward).
  auto cpu_after_ane_forward = [&] {
    std::vector<float> discard(size_t(d.N()) * d.D);
    host().attention_block_fwd(d, w, x, discard.data(), const_cast<AttentionSaved&>(s));
    host().attention_block_bwd(d, w, g, x, s, dout, dx, k);
  };
  if (on_cpu(d, "attention") || w.lora.dropout.active()) {
    if (d.layer < 0 || ane_forward_layers_.count(d.layer)) return cpu_after_ane_forward();
    return host().attention_block_bwd(d, w, g, x, s, dout, dx, k);
  }
  // QK-norm's gradients accumulate before the last programs run; kept to undo a partial step
  // (a frozen gain has none).
  std::vector<float> q_norm_g, k_norm_g;
  if (d.qk_norm && g.q_norm) q_norm_g.assign(g.q_norm, g.q_norm + d.hd);
  if (d.qk_norm && g.k_norm) k_norm_g.assign(g.k_norm, g.k_norm + d.hd);
  with_fallback([&] {
    attention_bwd_on_ane(d, program_weights(d, w), g, x, s, dout, dx, k);
    adapter_grads_after(d, w, g, s, k);  // after the last program: a rejection leaves them as they were
  }, [&] {
    std::copy(q_norm_g.begin(), q_norm_g.end(), g.q_norm);
    std::copy(k_norm_g.begin(), k_norm_g.end(), g.k_norm);
    cpu_after_ane_forward();
  });
}

void AneBackend::attention_block_decode(const BlockDims& d, const LayerTensors& w, const float* x, float* out,
                                        KvCacheLayer& cache, int pos0, AttentionSaved& s, float* scores) {
  with_fallback([&] { attention_decode_on_ane(d, program_weights(d, w), x, out, cache, pos0, s, scores); },
                [&] { host().attention_block_decode(d, w, x, out, cache, pos0, s, scores); });
}

void AneBackend::ffn_block_fwd(const BlockDims& d, const LayerTensors& w, const float* x, float* out, FfnSaved& s) {
  auto cpu = [&] { host().ffn_block_fwd(d, w, x, out, s); };
  if ((d.T > 1 && on_cpu(d, "ffn")) || w.lora.dropout.active()) return cpu();
  with_fallback([&] {
    ffn_fwd_on_ane(d, program_weights(d, w), x, out, s);
    keep_adapter_inputs(d, w, s);
  }, cpu);
}

void AneBackend::ffn_block_bwd(const BlockDims& d, const LayerTensors& w, const LayerTensors& g, const float* x,
                               const FfnSaved& s, const float* dout, float* dx, FfnScratch& k) {
  if (on_cpu(d, "ffn") || w.lora.dropout.active()) return host().ffn_block_bwd(d, w, g, x, s, dout, dx, k);
  // The FFN's saved values (xn, g, u, h) mean the same on either side, so no forward is redone.
  with_fallback([&] {
    ffn_bwd_on_ane(d, program_weights(d, w), g, x, s, dout, dx, k);
    adapter_grads_after(d, w, g, s, k);
  },
                [&] { host().ffn_block_bwd(d, w, g, x, s, dout, dx, k); });
}

}  // namespace anetrain
