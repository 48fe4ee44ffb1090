// One entry point for "MODEL" arguments: a preset name, a JSON model config, a Hugging Face
// folder, a llama2.c .bin (v0, v1 or v2), a GGUF file, or an anetrain checkpoint (.anck, step
// directory or run directory). Presets and JSON configs get a seeded random initialisation.
#pragma once
#include <memory>
#include <string>

#include "model/model.h"

namespace anetrain {

struct LoadedModel {
  std::unique_ptr<Model> model;
  std::string kind;  // "preset", "config", "hf", "llama2c", "gguf", "checkpoint"
};

LoadedModel load_model(const std::string& spec, uint64_t seed = 42);

// The config alone, without allocating weights where the source allows it (presets, JSON
// configs and HF folders); `kind` as in LoadedModel.
ModelConfig load_model_config(const std::string& spec, std::string* kind = nullptr);

}  // namespace anetrain
