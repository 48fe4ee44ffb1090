// `anetrain import-seed`: a run folder made from the seed system's BLZT checkpoint (version 4),
// that `train --resume` continues with the seed's hyperparameters (seed-system §3.1) and the
// state the file holds: weights, Adam m and v, Adam's t, the step and the learning-rate position.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "formats/blzt.h"

namespace anetrain {

struct ImportSeedOptions {
  std::string checkpoint;           // the BLZT file
  std::string out;                  // the new run folder (new or empty, as `train --out`)
  std::vector<std::string> data;    // shards (a raw uint16 token file such as the seed's data00.bin)
  std::string tokenizer;            // -z: kept in the run, for samples and for generate/export of it
  double max_lr = 3e-4;             // the seed never saved it: its default, or what the run used
  std::string backend = "cpu";
  std::string precision = "fp32";   // the seed's master weights and moments were fp32
};

struct ImportSeedResult {
  BlztHeader header;
  std::string checkpoint_dir;  // RUN/ckpt/step-N
  int64_t step = 0;            // optimizer updates done (the header's micro-steps / 10)
  int64_t steps = 0;           // updates in the whole run (the header's total micro-steps / 10, rounded up)
};

// The seed's fixed hyperparameters, as §3.1 gives them: 10 micro-steps of one sequence per
// update, warmup 100 and the cosine counted in micro-steps, min lr 0.1·max, AdamW β (0.9, 0.95),
// eps 1e-8, weight decay 0.1 on matrices only, clip 1.0.
inline constexpr int kSeedAccum = 10;
inline constexpr int kSeedWarmupMicroSteps = 100;

ImportSeedResult import_seed(const ImportSeedOptions& o);

}  // namespace anetrain
