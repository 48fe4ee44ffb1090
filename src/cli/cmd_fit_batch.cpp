// `anetrain fit-batch MODEL --tokens FILE --steps N [optimizer flags] -o OUT.safetensors`
// Repeats training steps (train/step.h) on one fixed batch (accum micro-batches of B rows each)
// and writes the final weights plus `losses` [N]. It checks the optimizer against torch and shows
// that the whole loop can memorise a batch; real training is `anetrain train`, whose loss scaling
// (fp16 backends) and non-finite policy (a step skipped, the run stopped after --max-nonfinite in
// a row) it shares, and ends with train's efficiency report (telemetry/efficiency.h).
#include <chrono>
#include <cstdio>
#include <memory>
#include <omp.h>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "contract/capabilities.h"
#include "contract/registry.h"
#include "core/error.h"
#include "data/token_list.h"
#include "formats/load.h"
#include "formats/safetensors.h"
#include "model/flops.h"
#include "model/workspace.h"
#include "telemetry/efficiency.h"
#include "train/optimizer.h"
#include "train/step.h"

namespace anetrain {

void add_fit_batch_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("fit-batch", "Run N optimizer steps on one fixed batch; write weights and losses");
  struct Options {
    std::string model, tokens, out, backend = "cpu", recompute = "none";
    bool u16 = false;
    int B = 0, T = 0, accum = 1, steps = 100, threads = 0, log_every = 0;
    int max_nonfinite = StepPolicy{}.max_nonfinite;
    uint64_t seed = 42;
    AdamWConfig opt;
    double min_lr = -1;
  };
  const auto o = std::make_shared<Options>();
  cmd->add_option("model", o->model, "Preset, model config .json, HF folder, llama2.c .bin, GGUF, or anetrain checkpoint")->required();
  cmd->add_option("--tokens", o->tokens, "accum×B×(T+1) token ids")->required();
  cmd->add_flag("--u16", o->u16, "Token file is raw little-endian uint16");
  cmd->add_option("--batch", o->B, "Sequences per micro-step B (default: all rows / accum)");
  cmd->add_option("--seq", o->T, "Tokens per sequence T")->required()->check(CLI::PositiveNumber);
  cmd->add_option("--accum", o->accum, "Micro-steps per optimizer step")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--steps", o->steps, "Optimizer steps")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--lr", o->opt.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--min-lr", o->min_lr, "Final learning rate of the cosine (default 0.1×lr)");
  cmd->add_option("--warmup", o->opt.warmup, "Linear warmup steps")->capture_default_str();
  cmd->add_option("--wd", o->opt.weight_decay, "Decoupled weight decay on matrices")->capture_default_str();
  cmd->add_option("--beta1", o->opt.beta1, "AdamW β1")->capture_default_str();
  cmd->add_option("--beta2", o->opt.beta2, "AdamW β2")->capture_default_str();
  cmd->add_option("--eps", o->opt.eps, "AdamW ε")->capture_default_str();
  cmd->add_option("--clip", o->opt.clip, "Global gradient-norm clip (≤0 disables)")->capture_default_str();
  cmd->add_option("-o,--out", o->out, "Output .safetensors (final weights + losses)")->required();
  cmd->add_option("--backend", o->backend, "Kernel backend")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed for random init of presets/configs")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0 = all cores)")->check(thread_count());
  cmd->add_option("--log-every", o->log_every, "Print the loss every N steps (0 = never)");
  cmd->add_option("--max-nonfinite", o->max_nonfinite, "Stop after K consecutive non-finite steps")->capture_default_str();
  cmd->add_option("--recompute", o->recompute, "Activations the backward recomputes: none, attention or blocks (as train's)")
      ->check(CLI::IsMember({"none", "attention", "blocks"}))
      ->capture_default_str();
  check_like_train(cmd);
  cmd->callback([&run, o] {
    run = [o] {
      if (o->threads > 0) omp_set_num_threads(o->threads);
      auto be = make_backend(o->backend);
      LoadedModel lm = load_model(o->model, o->seed);
      Model& m = *lm.model;
      const TokenList list = read_token_list(o->tokens, o->u16);
      const std::vector<int32_t>& ids = list.ids;
      if (ids.size() % size_t(o->T + 1)) fail(o->tokens + ": id count is not a multiple of T+1 = " + std::to_string(o->T + 1));
      const int rows = int(ids.size() / size_t(o->T + 1));
      if (o->B <= 0) o->B = rows / o->accum;
      if (o->B <= 0 || rows != o->B * o->accum)
        fail(o->tokens + ": holds " + std::to_string(rows) + " rows but --batch " + std::to_string(o->B) + " × --accum " +
             std::to_string(o->accum) + " needs " + std::to_string(o->B * o->accum));
      list.check_vocab(m.cfg.vocab_size);
      o->opt.total_steps = o->steps;
      o->opt.min_lr = o->min_lr >= 0 ? o->min_lr : 0.1 * o->opt.lr;
      AdamW adamw(m, o->opt);
      std::vector<std::unique_ptr<Workspace>> owned;
      for (int k = 0; k < o->accum; ++k) {
        owned.push_back(std::make_unique<Workspace>(m.cfg, o->B, o->T, nullptr, /*keep_logits=*/true,
                                                    /*flash_attention=*/false,
                                                    parse_recompute(o->recompute, "--recompute")));
        Workspace& ws = *owned.back();
        for (int b = 0; b < o->B; ++b)
          for (int t = 0; t < o->T; ++t) {
            const size_t row = size_t(k) * o->B + b;
            ws.inputs[size_t(b) * o->T + t] = ids[row * (o->T + 1) + t];
            ws.targets[size_t(b) * o->T + t] = ids[row * (o->T + 1) + t + 1];
          }
      }
      std::vector<Workspace*> micro;
      for (auto& ws : owned) micro.push_back(ws.get());
      StepPolicy policy;
      policy.scaling = loss_scaling_for(*be);
      policy.max_nonfinite = o->max_nonfinite;
      // The efficiency report's sums, as train keeps them: each step's wall time, the programs'
      // kernel timings and compiles (every compile here is inside a step: nothing is prepared).
      using Clock = std::chrono::steady_clock;
      const auto ms_since = [](Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); };
      const Clock::time_point t_open = Clock::now();
      const MatrixPeak peak = matrix_peak(be->caps());  // measured before the first step, as train does
      EfficiencyTotals eff;
      const double step_tokens = double(o->B) * o->T * o->accum;
      const double flops_per_step = training_step_flops(m.table, m.cfg, o->T, step_tokens, step_tokens);
      Clock::time_point t_step = Clock::now();
      auto count_compiles = [&](bool in_step) {
        for (const ProgramCompile& c : take_compiles(be->caps())) {
          eff.compiles += 1;
          eff.compile_ms += c.compile_ms + c.load_ms;
          if (in_step) eff.compile_in_steps_ms += c.compile_ms + c.load_ms;
        }
      };
      count_compiles(false);
      auto report = [&, o](int s, const StepResult& r) {
        eff.steps += 1;
        eff.step_ms += ms_since(t_step);
        eff.model_flops += flops_per_step;
        for (const KernelTiming& k : take_kernel_timings(be->caps())) {
          eff.compute_ms += k.eval_ms;
          eff.staging_ms += k.io_ms;
          eff.accelerator_flops += k.flops;
          eff.accelerator_model_flops += k.model_flops;
        }
        count_compiles(true);
        if (r.overflow)
          std::fprintf(stderr, "step %5d  fp16 gradients overflowed at loss scale %g; update skipped\n", s,
                       r.loss_scale);
        else if (r.nonfinite)
          std::fprintf(stderr, "step %5d  non-finite loss or gradient; update skipped\n", s);
        else if (o->log_every > 0 && (s % o->log_every == 0 || s + 1 == o->steps))
          std::fprintf(stderr, "step %5d  loss %.6f  grad_norm %.4f  lr %.3g\n", s, r.loss, r.grad_norm, r.lr);
        t_step = Clock::now();
      };
      const std::vector<float> losses = fit_fixed_batch(*be, m, adamw, micro, o->steps, policy, report);
      std::vector<StWriteItem> items;
      items.push_back({"losses", {o->steps}, losses.data()});
      for (const auto& s : m.table.specs()) items.push_back({s.name, s.shape, m.param(s)});
      write_safetensors(o->out, items, DType::f32);
      std::fprintf(stderr, "loss %.6f → %.6f after %d steps → %s\n", losses.front(), losses.back(), o->steps, o->out.c_str());
      eff.wall_ms = ms_since(t_open);
      eff.peak_gflops = peak.gflops;
      eff.peak_is_accelerator = peak.accelerator;
      eff.peak_source = peak.source;
      for (const std::string& line : efficiency_lines(efficiency_report(eff))) std::fprintf(stderr, "%s\n", line.c_str());
      return 0;
    };
  });
}

}  // namespace anetrain
