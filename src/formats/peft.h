// LoRA adapters in the layout people share them in: a Hugging Face PEFT folder with
// adapter_config.json (r, lora_alpha, target_modules, base_model_name_or_path) and
// adapter_model.safetensors, tensors named base_model.model.<projection>.lora_A.weight (r, in) and
// .lora_B.weight (out, r). Inside a Model B is held transposed (model/params.h); reading and writing
// transpose it, so a folder written here is the one PEFT writes.
#pragma once
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "model/model.h"

namespace anetrain {

// The adapter folder PATH names: PATH itself when it holds adapter_config.json; for an adapter
// run's folder, its newest verified checkpoint (each is a PEFT folder). A run whose checkpoints
// hold no adapters (full fine-tuning) is an error saying to use it as the model instead.
std::string adapter_folder(const std::string& path);

// The adapters a folder describes. Throws Error naming DIR/adapter_config.json and the field for
// what anetrain cannot compute the same way (rsLoRA, DoRA, biases, fan-in-fan-out layouts,
// targets outside q/k/v/o/gate/up/down).
LoraConfig read_peft_config(const std::string& dir);

// Adds the folder's adapters to `m` (which has none) and reads their values: every tensor the
// config implies must be present with its shape, and no other tensor may be.
void load_peft_adapter(Model& m, const std::string& dir);

// Writes m's adapters (or, with `gradients`, their gradients) as a PEFT folder: DIR is created if
// missing; each file is written atomically. `base_model` goes into base_model_name_or_path.
void save_peft_adapter(const Model& m, const std::string& dir, const std::string& base_model);

// The adapters' tensors under their PEFT names and shapes, B transposed back, for a safetensors
// writer: the weights, or the gradients (`gradients` true). `storage` keeps the transposed copies.
std::vector<StWriteItem> peft_tensors(const Model& m, bool gradients, std::vector<std::vector<float>>& storage);

// The PEFT module name of a LoRA target (q → q_proj, gate → gate_proj, …).
std::string peft_module_name(const std::string& target);

}  // namespace anetrain
