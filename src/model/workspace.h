// Every activation and scratch buffer a training step needs for a given (config, B, T),
// carved out of one allocation made up front. forward/backward never allocate.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "contract/stages.h"
#include "model/arena.h"
#include "model/config.h"
#include "model/vocab_compaction.h"

namespace anetrain {

class Backend;

// Which activations the forward keeps for the backward (`--recompute`). none: every layer's.
// attention: every layer's but the attention block's, which the backward recomputes from the
// layer's kept input. blocks: only each layer's input stream; the backward recomputes the whole
// layer. Recomputation reruns the same stages on the same inputs, so gradients keep their bits;
// the saved activations of all layers shrink to one layer's, which every layer's backward refills.
enum class Recompute { none, attention, blocks };
const char* recompute_name(Recompute r);
// Throws Error naming `what` (a flag or a run.json key) unless `name` is none, attention or blocks.
Recompute parse_recompute(const std::string& name, const std::string& what);

// Whether `be` wants attention in its flash form for B×T of this config (Workspace's flag).
bool flash_attention_for(const Backend& be, const ModelConfig& cfg, int B, int T);

struct Workspace {
  // With a compaction, logits cover only its ids (width = compaction->size()). keep_logits: the
  // full N×width logits are materialised (generation and `grad` read them); without it, the
  // classifier runs as the backend's classifier stage, which may never hold them all (training).
  // flash_attention: plan for a backend that runs attention in its flash form (saves lse, not
  // the B·Hq·T·T probabilities; Backend::attention_flash says whether it wants to).
  Workspace(const ModelConfig& cfg, int B, int T, const VocabCompaction* compaction = nullptr,
            bool keep_logits = true, bool flash_attention = false, Recompute recompute = Recompute::none);
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  int B, T;
  BlockDims dims;
  std::vector<int32_t> inputs, targets;  // (N) each
  std::vector<float*> x;                 // L+1 residual-stream snapshots, x[0] = embeddings, each (N,D)
  // After each attention block (N,D), and what each block saves: one per layer, or one slot shared
  // by all layers where `recompute` recomputes them (read them through the *_of(layer) accessors).
  std::vector<float*> x_mid;
  std::vector<AttentionSaved> attn;
  std::vector<FfnSaved> ffn;
  Recompute recompute;
  float* recomputed_out;  // (N,D) a recomputed block's output, equal to the kept stream (recompute only)
  float* x_mid_of(int layer) const { return x_mid[x_mid.size() == 1 ? 0 : size_t(layer)]; }
  AttentionSaved& attn_of(int layer) { return attn[attn.size() == 1 ? 0 : size_t(layer)]; }
  FfnSaved& ffn_of(int layer) { return ffn[ffn.size() == 1 ? 0 : size_t(layer)]; }
  AttentionScratch attn_scratch;
  FfnScratch ffn_scratch;
  float* xf;          // (N,D) final-normed stream
  float* final_rstd;  // (N)
  const VocabCompaction* compaction;
  int logit_width;            // V, or the compacted vocabulary size
  std::vector<int32_t> logit_targets;  // (N) targets in logit columns (= targets when not compacted)
  float* cls_w;       // (Vc,D) gathered classifier rows (compaction only)
  float* cls_g;       // (Vc,D) their gradient before scattering back (compaction only)
  float* logits;      // (N,logit_width) (keep_logits only)
  float* dlogits;     // (N,logit_width) (keep_logits only)
  float* losses;      // (N)
  float* lse;         // (N) each row's log-sum-exp (the classifier stage's saved state)
  std::vector<float> classifier_scratch;  // the classifier stage's; sized by the backend on first use
  float* dxf;         // (N,D)
  float* dx_a;        // (N,D) two ping-pong buffers for the residual gradient
  float* dx_b;        // (N,D)
  // The loss mask (N; 1 = the row's target counts), empty when every row counts. With one, the
  // loss is the mean over the rows that count and the classifier stage runs on those rows alone
  // (gathered below; `losses` and `lse` then hold their M rows first). A kept logits matrix still
  // covers every row; only the loss and its gradient leave the others out.
  std::vector<uint8_t> loss_mask;
  std::vector<int32_t> kept_rows;          // the rows that count, in order (set by forward)
  std::vector<int32_t> kept_targets;       // their logit targets
  std::vector<float> kept_xf, kept_dxf;    // (M,D) their final-normed stream and its gradient
  int64_t counted_rows() const;            // how many rows count (N without a mask)
  // Runtime options and counters (not planned memory):
  float act_clip = 0;         // > 0: clamp the residual stream to ±act_clip after every block
  double classifier_ms = 0;   // time in the classifier + loss, forward and backward, accumulated
  size_t floats() const { return arena_.floats(); }

 private:
  PlannedArena arena_;
};

}  // namespace anetrain
