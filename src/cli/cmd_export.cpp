// `anetrain export RUN_OR_CKPT -o DIR [--dtype f32|f16|bf16]`: a Hugging Face folder
// (config.json + model.safetensors) from an anetrain checkpoint or any other readable model.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/hf.h"
#include "formats/load.h"

namespace anetrain {

void add_export_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("export", "Write a model as a Hugging Face folder (config.json + safetensors)");
  struct Options {
    std::string src, out, dtype = "f32";
  };
  const auto o = std::make_shared<Options>();
  cmd->add_option("model", o->src, "Run directory, checkpoint, or any MODEL anetrain reads")->required();
  cmd->add_option("-o,--out", o->out, "Output folder")->required();
  cmd->add_option("--dtype", o->dtype, "Tensor dtype in the file")->check(CLI::IsMember({"f32", "f16", "bf16"}))->capture_default_str();
  cmd->callback([&run, o] {
    run = [o] {
      namespace fs = std::filesystem;
      refuse_output_over_input({(fs::path(o->out) / "model.safetensors").string(), (fs::path(o->out) / "config.json").string()},
                               model_input_files(o->src));
      LoadedModel lm = load_model(o->src);
      const DType t = o->dtype == "f16" ? DType::f16 : o->dtype == "bf16" ? DType::bf16 : DType::f32;
      save_hf_folder(*lm.model, o->out, t);
      std::fprintf(stderr, "wrote %s/config.json and %s/model.safetensors (%s)\n", o->out.c_str(), o->out.c_str(),
                   o->dtype.c_str());
      return 0;
    };
  });
}

}  // namespace anetrain
