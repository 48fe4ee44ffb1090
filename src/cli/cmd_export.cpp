// `anetrain export RUN_OR_CKPT -o DIR [--dtype f32|f16|bf16] [-z TOK]`: a Hugging Face folder
// (config.json + model.safetensors) from an anetrain checkpoint or any other readable model, with
// the tokenizer: -z's file, else the copy a run keeps of the one it was trained with.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/convert_job.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/hf.h"
#include "formats/load.h"
#include "model/lora.h"

namespace anetrain {

void add_export_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("export", "Write a model as a Hugging Face folder (config.json + safetensors)");
  struct Options {
    std::string src, out, dtype = "f32", tok_path;
  };
  const auto o = std::make_shared<Options>();
  cmd->add_option("model", o->src, "Run directory, checkpoint, or any MODEL anetrain reads")->required();
  cmd->add_option("-o,--out", o->out, "Output folder")->required();
  cmd->add_option("--dtype", o->dtype, "Tensor dtype in the file")->check(CLI::IsMember({"f32", "f16", "bf16"}))->capture_default_str();
  cmd->add_option("-z,--tokenizer", o->tok_path, "tokenizer.json or tokenizer.bin to put in the folder (default: a run's own)")
      ->check(CLI::ExistingFile);
  cmd->callback([&run, o] {
    run = [o] {
      namespace fs = std::filesystem;
      const std::string tokenizer = o->tok_path.empty() ? run_tokenizer(o->src) : o->tok_path;
      std::vector<std::string> outputs, inputs = model_input_files(o->src);
      for (const char* name : {"model.safetensors", "config.json", "tokenizer.json", "tokenizer.bin", "tokenizer_config.json"})
        outputs.push_back((fs::path(o->out) / name).string());
      if (!o->tok_path.empty()) inputs.push_back(o->tok_path);
      refuse_output_over_input(outputs, inputs);
      LoadedModel lm = load_model(o->src);
      if (lm.model->cfg.lora.rank > 0) {  // an adapter run: the model it now computes (its PEFT folder is each checkpoint)
        std::fprintf(stderr, "merging rank-%d adapters into the weights\n", lm.model->cfg.lora.rank);
        merge_adapters(*lm.model);
      }
      fold_residual_scale_for_export(*lm.model);
      // A tokenizer the model cannot use is refused before anything is written.
      if (!tokenizer.empty() && load_tokenizer(tokenizer, lm.model->cfg.vocab_size)->vocab_size() > lm.model->cfg.vocab_size)
        fail(tokenizer + ": tokenizer has more tokens than the model has embedding rows");
      const DType t = o->dtype == "f16" ? DType::f16 : o->dtype == "bf16" ? DType::bf16 : DType::f32;
      save_hf_folder(*lm.model, o->out, t);
      std::string carried = "no tokenizer";
      if (!tokenizer.empty()) {
        carried.clear();
        for (const std::string& name : copy_tokenizer_files(tokenizer, o->out)) carried += (carried.empty() ? "" : ", ") + name;
      }
      std::fprintf(stderr, "wrote %s/config.json and %s/model.safetensors (%s; %s)\n", o->out.c_str(), o->out.c_str(),
                   o->dtype.c_str(), carried.c_str());
      return 0;
    };
  });
}

}  // namespace anetrain
