// `anetrain merge BASE ADAPTER_DIR -o OUT [--dtype …] [--to …] [-z TOKENIZER]`: the base model
// with a LoRA adapter folded into its weights (W + α/r·B·A, model/lora.h), written in any format
// `convert` writes — GGUF with its tokenizer for llama.cpp, a Hugging Face folder, llama2.c.
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/convert_job.h"
#include "core/error.h"
#include "formats/load.h"
#include "formats/peft.h"

namespace anetrain {

void add_merge_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("merge", "Fold a LoRA adapter into its base model and write the result");
  const auto o = std::make_shared<ConvertJob>();
  cmd->add_option("base", o->in, "The base model (any model anetrain reads)")->required();
  cmd->add_option("adapter", o->lora, "PEFT adapter folder (adapter_config.json + adapter_model.safetensors), "
                                      "e.g. an adapter run's checkpoint RUN/ckpt/step-…")
      ->required();
  cmd->add_option("-o,--out", o->out, "Where to write: *.gguf → GGUF, *.bin → llama2.c, a folder → Hugging Face")->required();
  cmd->add_option("--to", o->to, "Output format, overriding OUT's extension")
      ->check(CLI::IsMember({"llama2c-v0", "llama2c-v1", "llama2c-v2", "hf", "gguf"}));
  cmd->add_option("--dtype", o->dtype, "Matrix dtype, as for convert")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}))
      ->capture_default_str();
  cmd->add_option("--group", o->group, "Q8_0 group size for llama2c-v2");
  cmd->add_option("-z,--tokenizer", o->tok_path, "tokenizer to store with the model (default: the base's or the run's)");
  cmd->callback([&run, o] {
    run = [o] {
      // Refused before anything is read: an adapter over a base that is not its own would
      // otherwise fail only at the first tensor of the wrong shape.
      o->lora = adapter_folder(o->lora);  // a run folder: its newest checkpoint
      read_peft_config(o->lora);
      const bool llama2c_out = o->to.rfind("llama2c", 0) == 0 ||
                               (o->to.empty() && std::filesystem::path(o->out).extension() == ".bin");
      if (o->tok_path.empty() && !llama2c_out) {
        // The adapter run's tokenizer copy when the base has none of its own next to it.
        const std::string run_tok = run_tokenizer(o->lora);
        if (!run_tok.empty()) o->tok_path = run_tok;
      }
      return run_convert(*o);
    };
  });
}

}  // namespace anetrain
