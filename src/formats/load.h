// One entry point for "MODEL" arguments: a preset name, a JSON model config, a Hugging Face
// folder, a llama2.c .bin (v0, v1 or v2), a GGUF file, or an anetrain checkpoint (.anck, step
// directory or run directory). Presets and JSON configs get a seeded random initialisation.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/packed_model.h"
#include "tokenizer/tokenizer.h"

namespace anetrain {

struct LoadedModel {
  std::unique_ptr<Model> model;
  std::string kind;  // "preset", "config", "hf", "llama2c", "gguf", "checkpoint", "blzt" (the seed's)
};

// `layout`: the base of a new adapter run — its adapters (left zero; init_adapters draws them) and
// the format its frozen matrices are held in. Presets, JSON configs, HF folders and GGUF files
// are read straight into it; llama2.c files and checkpoints are read in fp32 and then moved.
// A held base records where it came from (Model::base_source) for its run's checkpoints.
LoadedModel load_model(const std::string& spec, uint64_t seed = 42, const ModelLayout& layout = {});

// The config alone, without allocating weights where the source allows it (presets, JSON
// configs and HF folders); `kind` as in LoadedModel.
ModelConfig load_model_config(const std::string& spec, std::string* kind = nullptr);

// MODEL for inference with its matrices in their stored format. Without `want`, the file's own:
// Q8_0 for a llama2.c version-2 file or a GGUF whose matrices are Q8_0, bf16 for a GGUF whose
// matrices are BF16, else f32. With `want`, converted where the file differs (Q8_0 `group`: 0 =
// default_q8_group; a file already in Q8_0 keeps its own). `kind` as in LoadedModel.
std::unique_ptr<PackedModel> load_packed_model(const std::string& spec, std::optional<WeightFormat> want = {},
                                               int group = 0, std::string* kind = nullptr);

// Every file that loading MODEL may read (for refuse_output_over_input): the file itself, or
// each regular file inside a folder (an HF folder, a run or step directory; three levels deep).
// Empty for a preset.
std::vector<std::string> model_input_files(const std::string& spec);

// Loads tokenizer.bin (llama2.c; vocab_size needed since the file does not store it — pass 0
// to read to the end of the file), tokenizer.json (either HF style) or the vocabulary a GGUF
// model carries. Errors name file + offset.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, int vocab_size_hint = 0);

// The tokenizer for MODEL: `given` when set, else a GGUF's own (SentencePiece vocabularies), else
// the copy a run keeps (run_tokenizer), else a tokenizer.json / tokenizer.bin next to it or in up
// to three parent folders. Throws when none.
std::string find_tokenizer(const std::string& model, const std::string& given);

// run.json's key for the copy of its tokenizer a run keeps: a path inside the run folder.
inline constexpr const char* kRunTokenizerKey = "tokenizer_copy";
// The tokenizer copy of the run MODEL belongs to (MODEL a run folder, a step folder in its ckpt/,
// or the model.anck in one); empty when MODEL is not a run's or the run keeps no copy. Throws
// when run.json names a copy that is gone.
std::string run_tokenizer(const std::string& model);

// Copies a tokenizer file into a model folder under the name readers look for (tokenizer.json
// for JSON, else tokenizer.bin) with, for a tokenizer.json, the tokenizer_config.json beside it
// when there is one; each file written atomically. Returns the names written.
std::vector<std::string> copy_tokenizer_files(const std::string& tokenizer, const std::string& out_dir);

}  // namespace anetrain
