// What a run was trained with, kept with it so that its folder stands on its own after the
// tokenizer's cache or the original file is gone:
//   RUN/tokenizer/tokenizer.json | tokenizer.bin   a copy of the run's tokenizer (and the
//                                                  tokenizer_config.json beside a tokenizer.json)
// and, in run.json beside the settings:
//   "tokenizer_copy"          that copy's path inside the run (formats/load.h reads it back)
//   "tokenizer_fingerprint"   the tokenizer's fingerprint, as 16 hex digits
//   "base_model"              the pretrained model a fine-tuning run started from, as given
// These are recorded once, when the run starts (or when a run from before them is resumed), and
// kept as they are through every later write of run.json.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace anetrain {

// The run folder's subfolder that holds the tokenizer copy.
inline constexpr const char* kRunTokenizerDir = "tokenizer";

// The run.json keys above: RunDir keeps them apart from the settings it is given.
const std::vector<std::string>& run_input_keys();

// Adds to `recorded` what it lacks and `settings` (run.json's settings) can supply: copies the
// settings' tokenizer — or, without one, the tokenizer the first data shard was prepared with,
// when its prepare.json names it and the fingerprints agree — into RUN/tokenizer/ (each file
// written atomically) and names the base model. A tokenizer that cannot be read is a warning and
// no copy; a copy that cannot be written is an error. `written` gains every file created.
void record_run_inputs(const std::string& run_dir, const nlohmann::json& settings, nlohmann::json& recorded,
                       std::vector<std::string>& written);

}  // namespace anetrain
