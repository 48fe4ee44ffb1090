// `anetrain info MODEL [--json] [--seq T]`: config, parameters per tensor, FLOPs per token.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "formats/load.h"
#include "formats/safetensors.h"
#include "model/flops.h"

namespace anetrain {

namespace {
std::string with_commas(size_t n) {
  std::string s = std::to_string(n);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return s;
}
}  // namespace

void add_info_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("info", "Print a model's config, parameter table and FLOPs per token");
  struct Options {
    std::string model;
    bool as_json = false;
    int seq = 256;
  };
  const auto o = std::make_shared<Options>();
  cmd->add_option("model", o->model, "Preset, model config .json, HF folder, llama2.c .bin, GGUF, or anetrain checkpoint")->required();
  cmd->add_flag("--json", o->as_json, "Machine-readable output");
  cmd->add_option("--seq", o->seq, "Sequence length for the attention FLOPs")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->callback([&run, o] {
    run = [o] {
      std::string kind;
      const ModelConfig cfg = load_model_config(o->model, &kind);
      const ParamTable table(cfg);
      const FlopCount f = flops_per_token(cfg, o->seq);
      if (o->as_json) {
        nlohmann::ordered_json j;
        j["model"] = o->model;
        j["source"] = kind;
        j["config"] = config_to_json(cfg);
        j["tensors"] = nlohmann::json::array();
        for (const auto& s : table.specs())
          j["tensors"].push_back({{"name", s.name}, {"shape", s.shape}, {"params", s.numel()}});
        j["total_params"] = table.total();
        j["seq_len"] = o->seq;
        j["flops_per_token"] = {{"forward", f.forward()}, {"training", f.training()}};
        std::cout << j.dump(2) << "\n";
        return 0;
      }
      const ModelConfig& c = cfg;
      std::printf("model %s (%s, arch %s)\n", o->model.c_str(), kind.c_str(), c.arch.c_str());
      std::printf("  dim %d  layers %d  heads %d/%d (q/kv)  head_dim %d  hidden %d  vocab %d  max_seq %d\n", c.dim,
                  c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.hidden_dim, c.vocab_size, c.max_seq_len);
      std::printf("  rope %s theta %g  norm_eps %g  qk_norm %s  tied %s  residual_scale %g\n",
                  rope_style_name(c.rope_style), c.rope_theta, c.norm_eps, c.qk_norm ? "yes" : "no",
                  c.tied_embeddings ? "yes" : "no", c.residual_scale);
      std::printf("\n  %-48s %-16s %14s\n", "tensor", "shape", "params");
      for (const auto& s : table.specs())
        std::printf("  %-48s %-16s %14zu\n", s.name.c_str(), shape_str(s.shape).c_str(), s.numel());
      std::printf("\n  total parameters: %s (%.2fM)\n", with_commas(table.total()).c_str(), table.total() / 1e6);
      std::printf("  FLOPs per token at seq %d: forward %.4g, training %.4g\n", o->seq, f.forward(), f.training());
      return 0;
    };
  });
}

}  // namespace anetrain
