// `anetrain export RUN_OR_CKPT -o DIR [--dtype f32|f16|bf16]`: a Hugging Face folder
// (config.json + model.safetensors) from an anetrain checkpoint or any other readable model.
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/hf.h"
#include "formats/load.h"

namespace anetrain {

void add_export_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("export", "Write a model as a Hugging Face folder (config.json + safetensors)");
  static std::string src, out, dtype = "f32";
  cmd->add_option("model", src, "Run directory, checkpoint, or any MODEL anetrain reads")->required();
  cmd->add_option("-o,--out", out, "Output folder")->required();
  cmd->add_option("--dtype", dtype, "Tensor dtype in the file")->check(CLI::IsMember({"f32", "f16", "bf16"}))->capture_default_str();
  cmd->callback([&run] {
    run = [] {
      namespace fs = std::filesystem;
      refuse_output_over_input({(fs::path(out) / "model.safetensors").string(), (fs::path(out) / "config.json").string()},
                               model_input_files(src));
      LoadedModel lm = load_model(src);
      const DType t = dtype == "f16" ? DType::f16 : dtype == "bf16" ? DType::bf16 : DType::f32;
      save_hf_folder(*lm.model, out, t);
      std::fprintf(stderr, "wrote %s/config.json and %s/model.safetensors (%s)\n", out.c_str(), out.c_str(),
                   dtype.c_str());
      return 0;
    };
  });
}

}  // namespace anetrain
