// `anetrain grad MODEL [--lora ADAPTER_DIR [--lora-dropout P --dropout-key K]] --tokens FILE [--mask FILE] [--batch B --seq T] -o OUT.safetensors`
// One forward and backward; writes loss, logits and every parameter's gradient under its HF
// name, in the layout the weights were read in. The window outside references look through.
#include <cstdio>
#include <memory>
#include <omp.h>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "contract/registry.h"
#include "core/error.h"
#include "data/token_list.h"
#include "formats/load.h"
#include "formats/peft.h"
#include "formats/safetensors.h"
#include "model/workspace.h"
#include "train/adapter_dropout.h"
#include "train/step.h"

namespace anetrain {

void add_grad_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("grad", "One forward+backward pass; write loss, logits and all gradients");
  struct Options {
    std::string model, tokens, mask, out, lora, backend = "cpu";
    bool u16 = false, ane_strict = false;
    int B = 0, T = 0, threads = 0;
    uint64_t seed = 42, dropout_key = 0;
    double dropout = 0;
  };
  const auto o = std::make_shared<Options>();
  cmd->add_option("model", o->model, "Preset, model config .json, HF folder, llama2.c .bin, GGUF, or anetrain checkpoint")->required();
  cmd->add_option("--tokens", o->tokens, "B×(T+1) token ids: whitespace-separated text, or raw uint16 with --u16")->required();
  cmd->add_option("--mask", o->mask,
                  "Loss mask, one 0/1 per token of --tokens in the same form (1: predicting that token counts; "
                  "each row's first is not predicted); the loss is the mean over the counted targets");
  cmd->add_option("--lora", o->lora,
                  "A PEFT adapter folder over MODEL: the base is frozen and the adapters' gradients are written, "
                  "under PEFT's names and shapes");
  cmd->add_option("--lora-dropout", o->dropout,
                  "With --lora: drop adapter inputs as a training step would, with this probability (default: none)")
      ->check(within(Range{0, 1, false, true}));
  cmd->add_option("--dropout-key", o->dropout_key,
                  "The micro-batch key of --lora-dropout's masks (a training step's is derived from its seed, step "
                  "and micro-batch)")
      ->capture_default_str();
  cmd->add_flag("--u16", o->u16, "Token file (and --mask) is raw little-endian uint16");
  cmd->add_flag("--ane-strict", o->ane_strict,
                "A program the Neural Engine rejects is an error (default: its stage runs on the CPU, with a warning)");
  cmd->add_option("--batch", o->B, "Sequences B (default: inferred)")->check(within(Range::between(1, 1 << 20).whole()));
  cmd->add_option("--seq", o->T, "Tokens per sequence T (default: inferred)")->check(within(Range::between(1, 1 << 20).whole()));
  cmd->add_option("-o,--out", o->out, "Output .safetensors")->required();
  cmd->add_option("--backend", o->backend, "Kernel backend")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed for random init of presets/configs")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0 = all cores)")->check(thread_count());
  cmd->callback([&run, o] {
    run = [o] {
      if (o->threads > 0) omp_set_num_threads(o->threads);
      auto be = make_backend(o->backend);
      if (CompiledPrograms* programs = be->caps().programs) programs->allow_program_fallback(!o->ane_strict);
      LoadedModel lm = load_model(o->model, o->seed);
      Model& m = *lm.model;
      if (!o->lora.empty()) load_peft_adapter(m, adapter_folder(o->lora));
      if (o->dropout > 0 && o->lora.empty()) fail("--lora-dropout drops adapter inputs: it needs --lora ADAPTER_DIR");
      const TokenList list = read_token_list(o->tokens, o->u16);
      const std::vector<int32_t>& ids = list.ids;
      const BatchShape bs = infer_batch_shape(ids.size(), o->B, o->T, o->tokens);
      list.check_vocab(m.cfg.vocab_size);
      Workspace ws(m.cfg, bs.B, bs.T);
      for (int b = 0; b < bs.B; ++b)
        for (int t = 0; t < bs.T; ++t) {
          ws.inputs[size_t(b) * bs.T + t] = ids[size_t(b) * (bs.T + 1) + t];
          ws.targets[size_t(b) * bs.T + t] = ids[size_t(b) * (bs.T + 1) + t + 1];
        }
      if (!o->mask.empty()) ws.loss_mask = read_loss_mask_rows(o->mask, o->u16, list, bs);
      // fp16 backends: the trainer's loss scaling, for one step (train/step.h).
      const AdapterDropoutScope dropout(m, ws, o->dropout, o->dropout_key);
      const ScaledGradients sg = forward_backward_scaled(*be, m, ws);
      const double loss = sg.loss, scale = sg.scale;
      const float loss_f = float(loss);
      std::vector<StWriteItem> items;
      items.push_back({"loss", {}, &loss_f});
      items.push_back({"logits", {bs.B, bs.T, m.cfg.vocab_size}, ws.logits});
      std::vector<std::vector<float>> transposed;  // PEFT's B layout, kept alive until written
      if (m.cfg.lora.rank > 0) {
        for (auto& item : peft_tensors(m, true, transposed)) items.push_back(std::move(item));
      } else {
        for (const auto& s : m.table.specs())
          if (s.trainable) items.push_back({s.name, s.shape, m.grad(s)});
      }
      write_safetensors(o->out, items, DType::f32);
      if (!ws.loss_mask.empty())
        std::fprintf(stderr, "loss mask: %lld of %d targets count\n", (long long)ws.counted_rows(), bs.B * bs.T);
      std::fprintf(stderr, "loss %.6f over %d×%d tokens (%s backend%s) → %s\n", loss, bs.B, bs.T, be->name().c_str(),
                   scale != 1.0 ? (", loss scale " + std::to_string(int64_t(scale))).c_str() : "", o->out.c_str());
      return 0;
    };
  });
}

}  // namespace anetrain
