// `anetrain train`: the training loop over token shards, with checkpoints, exact resume,
// signal handling, non-finite guards and JSONL telemetry. Options are stored in RUN/run.json
// so that --resume continues with exactly the settings the run started with.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/option_check.h"
#include "data/sampler.h"
#include "model/config.h"
#include "train/loss_scaler.h"
#include "train/optimizer.h"

namespace anetrain {

struct TrainOptions {
  std::string model = "stories15m";
  bool scratch = false;  // presets and JSON configs always start from random weights
  std::vector<std::string> data, val_data;
  double val_frac = 0.0;
  int seq = 256, batch = 8, accum = 1;
  int64_t steps = 1000;
  int64_t stop_at = 0;  // > 0: checkpoint and pause after this step (resume continues the schedule)
  // > 0: fit the run into this many seconds of training. Early in the warmup (before the cosine
  // starts) the trainer measures its step time and lowers `steps` so the run ends within the
  // budget; the new step count goes into run.json, so a resume keeps the same schedule.
  double time_budget_s = 0;
  AdamWConfig opt;      // lr 3e-4, warmup 100, min_lr 0.1·lr, clip 1, wd 0.1, β 0.9/0.95
  double act_clip = 0;
  uint64_t seed = 42;
  bool compact_vocab = false;
  std::string out;
  int ckpt_every = 100, keep = 3;
  bool save_best = false;
  int eval_every = 100, eval_batches = 8;
  // Every sample_every steps (0 = never), a `sample` telemetry event: a greedy and a sampled
  // completion of sample_prompt from the current weights, read with `tokenizer`.
  std::string tokenizer;
  int sample_every = 0, sample_tokens = 48;
  std::string sample_prompt = "Once upon a time";
  int threads = 0;
  std::string backend = "cpu";
  std::string precision = "fp32";  // fp32 | bf16 (the CLI resolves its default from the CPU)
  int log_every = 10;
  Sampling sampling = Sampling::random;
  int max_nonfinite = 20;
  std::vector<int64_t> inject_nan;  // testing hook: force a NaN loss at these 1-based steps
  std::vector<int64_t> inject_overflow;  // testing hook: an inf gradient at these steps (fp16 backends)
  bool ane_strict = false;     // a program the accelerator rejects is an error, not a CPU fallback
  double loss_scale = LossScaling::kInitial;  // initial dynamic loss scale for fp16 backends
  int loss_scale_window = 1000;  // clean steps before the scale doubles
  // LoRA fine-tuning (lora_rank > 0): the model's weights are frozen and adapters of this rank on
  // lora_targets train (model/config.h LoraConfig); lora_alpha 0 means alpha = rank (scale 1).
  // The format the frozen base of an adapter run is held in: f32, bf16 (rounded to nearest even)
  // or q8_0 (GGUF's blocks); the run computes with exactly those values (model/held_base.h).
  std::string base_dtype = "f32";
  int lora_rank = 0;
  double lora_alpha = 0;
  std::string lora_targets = "q,k,v,o,gate,up,down";
  double lora_dropout = 0;  // PEFT's lora_dropout: training drops adapter inputs with this probability
  // Activations recomputed in the backward instead of kept (none | attention | blocks; see
  // model/workspace.h Recompute). The gradients are the same bits, so a resume may change it.
  std::string recompute = "none";

  // Invocation only, never in run.json: put a new run into a non-empty folder that is not a run.
  bool out_force = false;

  nlohmann::json to_json() const;
  static TrainOptions from_json(const nlohmann::json& j);
  // Throws Error naming the first option outside train_option_rules() (or --threads, --stop-at);
  // by its flag ("--lr") or, for the C API, its run.json key.
  void validate(bool cli_names) const;
  // The adapters these options ask for (rank 0: none).
  LoraConfig lora() const;
  // Data, tokenizer, model file and run folder as absolute paths, for run.json.
  void make_paths_absolute();
  // Folders `anetrain prepare` wrote, in --data or --val-data, become their shards; a --data
  // folder's validation shards validate the run unless --val-data or --val-frac is given.
  void expand_prepared_folders();
};

// The allowed range of each numeric setting: its run.json key and its `anetrain train` flag.
struct TrainOptionRule {
  const char* key;
  const char* flag;
  Range range;
};
const std::vector<TrainOptionRule>& train_option_rules();

struct TrainResult {
  int64_t step = 0;
  double last_loss = 0, last_val = -1;
  std::string checkpoint;  // newest checkpoint directory
  bool interrupted = false;
};

struct Parallel;  // train/session.h: data parallel ranks

// Runs (or, with resume_dir set, resumes) a run — on every rank of `par` when given. Throws Error
// on bad input or when training must stop (too many non-finite steps).
TrainResult train(TrainOptions o, const std::string& resume_dir = "");
TrainResult train(TrainOptions o, const std::string& resume_dir, const Parallel& par);

}  // namespace anetrain
