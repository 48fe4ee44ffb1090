// Hugging Face model folders: config.json (LlamaForCausalLM / Qwen3ForCausalLM) plus one or
// more *.safetensors files with the standard tensor names (the names of our ParamTable).
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/dtype.h"
#include "model/model.h"
#include "model/packed_model.h"

namespace anetrain {

ModelConfig config_from_hf_json(const nlohmann::json& j, const std::string& source);
nlohmann::json config_to_hf_json(const ModelConfig& c);

ModelConfig load_hf_config(const std::string& dir);

// HF weights rotate with the "half" convention; the returned config says so.
std::unique_ptr<Model> load_hf_folder(const std::string& dir, const ModelLayout& layout = {});
// A folder whose matrices are all BF16 (Qwen3's released checkpoint) as a bf16 PackedModel, its
// matrices copied as stored (never widened to fp32; gains in fp32); nullptr for other folders.
std::unique_ptr<PackedModel> load_hf_folder_bf16(const std::string& dir);
// Writes config.json + model.safetensors. A model whose rope_style is interleaved is permuted
// to the half layout first, since that is what every HF consumer assumes.
void save_hf_folder(const Model& m, const std::string& dir, DType dtype);

// Reorders q/k rows of every head between the two RoPE layouts (see RopeStyle). Both directions
// are provided so a model can be flipped and flipped back bit for bit.
void permute_rope_to_half(Model& m);
void permute_rope_to_interleaved(Model& m);

// `src` with its q/k rows in `style`: `src` itself when they already are, else a permuted copy
// held in `copy`. Writers use it to give each format the layout its readers assume.
const Model& in_rope_style(const Model& src, RopeStyle style, std::unique_ptr<Model>& copy);

}  // namespace anetrain
