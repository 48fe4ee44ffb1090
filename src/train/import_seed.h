// `anetrain import-seed`: a run folder made from the seed system's BLZT checkpoint, that `train
// --resume` continues with the hyperparameters of the pipeline that wrote it (seed-system §3.1
// for versions 4 and 3 from c3c5094, §3.2 for version 2) and the state the file holds: weights,
// Adam m and v, Adam's t, the step and the learning-rate position.
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
  std::string v3_writer;            // a version 3 file: the seed commit that wrote it (formats/blzt.h)
  std::string backend = "cpu";
  std::string precision = "fp32";   // the seed's master weights and moments were fp32
};

struct ImportSeedResult {
  BlztHeader header;
  std::string checkpoint_dir;  // RUN/ckpt/step-N
  int64_t step = 0;            // optimizer updates done (the header's micro-steps / 10)
  int64_t steps = 0;           // updates in the whole run (the header's total micro-steps / 10, rounded up)
};

// The dynamic pipeline's fixed hyperparameters, as §3.1 gives them: 10 micro-steps of one
// sequence per update, warmup 100 and the cosine counted in micro-steps, min lr 0.1·max, AdamW β
// (0.9, 0.95), eps 1e-8, weight decay 0.1 on matrices only, clip 1.0. The static pipelines' (§3.2,
// version 2): the same 10 micro-steps, Adam β (0.9, 0.999), eps 1e-8, the header's learning rate
// held constant, no weight decay, no clipping.
inline constexpr int kSeedAccum = 10;
inline constexpr int kSeedWarmupMicroSteps = 100;

ImportSeedResult import_seed(const ImportSeedOptions& o);

}  // namespace anetrain
