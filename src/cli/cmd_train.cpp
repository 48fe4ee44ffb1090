// `anetrain train`: flags in the spirit of llama2.c and the seed trainer; see train/trainer.h.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "contract/registry.h"
#include "core/error.h"
#include "dist/comm.h"
#include "telemetry/dashboard_server.h"
#include "train/quickstart.h"
#include "train/run_dir.h"
#include "train/session.h"
#include "train/trainer.h"

namespace anetrain {

namespace {

// --dashboard: the page is served from background threads of this process while it trains;
// it reads only the telemetry file, so the training loop does not wait on it.
std::unique_ptr<DashboardServer> start_dashboard(DashboardOptions web, const std::string& run_dir) {
  web.runs = {run_dir};
  auto server = std::make_unique<DashboardServer>(web);
  server->start();
  std::fputs(server->banner("served while this process trains; afterwards `anetrain dashboard " + run_dir + "`").c_str(),
             stdout);
  std::fflush(stdout);
  return server;
}

// On --resume the run keeps the settings in its run.json. The flags that steer only this
// invocation (how long, how often, on what) apply: those kept in TrainOptions are copied over the
// run's (`take`), the others (the dashboard's, the ranks', the test hooks) are read where they are
// used. A flag that would change what the run reads or computes is refused when its value differs
// from the run's, instead of being silently dropped (`--resume RUN --lr 1e-4` used to train on at
// the old rate without a word).
struct ResumeOverride {
  const char* flag;
  void (*take)(TrainOptions& run, const TrainOptions& asked);  // null: not a TrainOptions setting
};
const ResumeOverride kResumeOverrides[] = {
    {"--steps", [](TrainOptions& r, const TrainOptions& a) { r.steps = a.steps; }},
    {"--stop-at", nullptr},  // set for every invocation, given or not
    {"--threads", [](TrainOptions& r, const TrainOptions& a) { r.threads = a.threads; }},
    {"--log-every", [](TrainOptions& r, const TrainOptions& a) { r.log_every = a.log_every; }},
    {"--ckpt-every", [](TrainOptions& r, const TrainOptions& a) { r.ckpt_every = a.ckpt_every; }},
    {"--keep", [](TrainOptions& r, const TrainOptions& a) { r.keep = a.keep; }},
    {"--eval-every", [](TrainOptions& r, const TrainOptions& a) { r.eval_every = a.eval_every; }},
    {"--sample-every", [](TrainOptions& r, const TrainOptions& a) { r.sample_every = a.sample_every; }},
    {"--tokenizer", [](TrainOptions& r, const TrainOptions& a) { r.tokenizer = a.tokenizer; }},
    {"--max-nonfinite", [](TrainOptions& r, const TrainOptions& a) { r.max_nonfinite = a.max_nonfinite; }},
    {"--backend", [](TrainOptions& r, const TrainOptions& a) { r.backend = a.backend; }},
    {"--ane-strict", [](TrainOptions& r, const TrainOptions&) { r.ane_strict = true; }},
    // Memory only: the same gradients.
    {"--recompute", [](TrainOptions& r, const TrainOptions& a) { r.recompute = a.recompute; }},
    {"--resume", nullptr}, {"--dashboard", nullptr}, {"--port", nullptr}, {"--host", nullptr},
    {"--dist-timeout", nullptr}, {"--dist-overlap", nullptr}, {"--inject-nan", nullptr},
    {"--inject-overflow", nullptr}, {"--help", nullptr}};

const ResumeOverride* resume_override(const std::string& flag) {
  for (const ResumeOverride& r : kResumeOverrides)
    if (flag == r.flag) return &r;
  return nullptr;
}

// The run.json key each remaining flag sets (--out-force has none: a resumed run is in its folder).
const std::map<std::string, std::string> kResumeFixed = {
    {"--model", "model"}, {"--scratch", "scratch"}, {"--data", "data"}, {"--val-data", "val_data"},
    {"--val-frac", "val_frac"}, {"--lora", "lora_rank"}, {"--lora-alpha", "lora_alpha"},
    {"--lora-targets", "lora_targets"}, {"--lora-dropout", "lora_dropout"}, {"--seq", "seq"}, {"--batch", "batch"},
    {"--accum", "accum"}, {"--time-budget", "time_budget_s"}, {"--lr", "lr"}, {"--min-lr", "min_lr"},
    {"--warmup", "warmup"}, {"--wd", "wd"}, {"--beta1", "beta1"}, {"--beta2", "beta2"}, {"--clip", "clip"},
    {"--act-clip", "act_clip"}, {"--base-dtype", "base_dtype"}, {"--seed", "seed"},
    {"--compact-vocab", "compact_vocab"}, {"--out", "out"}, {"--save-best", "save_best"},
    {"--eval-batches", "eval_batches"}, {"--sample-prompt", "sample_prompt"}, {"--sample-tokens", "sample_tokens"},
    {"--precision", "precision"}, {"--sampling", "sampling"}, {"--loss-scale", "loss_scale"},
    {"--loss-scale-window", "loss_scale_window"}};

std::string setting_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : ",") + setting_text(e);
    return s;
  }
  if (v.is_number_float()) {
    char text[32];
    std::snprintf(text, sizeof text, "%.10g", v.get<double>());
    return text;
  }
  return v.dump();
}

// Numbers compare to 1e-12 of their size: run.json keeps derived values (--min-lr defaults to
// 0.1 × --lr, stored as 0.00030000000000000003) that a user types as 3e-4.
bool same_setting(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.get<double>(), y = b.get<double>();
    return std::fabs(x - y) <= 1e-12 * std::max(std::fabs(x), std::fabs(y));
  }
  return a == b;
}

// `given` is what the command line parsed (its paths made absolute as run.json's are), `run` the
// run's settings.
void refuse_changed_settings(const CLI::App* cmd, const std::string& run_dir, TrainOptions given,
                             const TrainOptions& run) {
  given.make_paths_absolute();
  given.expand_prepared_folders();
  nlohmann::json now = given.to_json(), kept = run.to_json();
  for (nlohmann::json* j : {&now, &kept})  // alpha 0 means "the rank"
    if ((*j)["lora_alpha"].get<double>() <= 0) (*j)["lora_alpha"] = (*j)["lora_rank"];
  std::string changed;
  for (const CLI::Option* opt : cmd->get_options()) {
    const std::string flag = opt->get_name();
    if (opt->count() == 0 || resume_override(flag)) continue;
    const auto key = kResumeFixed.find(flag);
    if (key != kResumeFixed.end() && same_setting(now.at(key->second), kept.at(key->second))) continue;
    changed += (changed.empty() ? "" : "; ") + flag;
    if (key != kResumeFixed.end())
      changed += " " + setting_text(now.at(key->second)) + " (the run's: " + setting_text(kept.at(key->second)) + ")";
  }
  if (!changed.empty())
    fail("--resume " + run_dir + " continues the run with its own settings; these would change it: " + changed +
         ". A resumed run takes --steps, --stop-at, --threads, --backend, --recompute and the logging, checkpoint, "
         "evaluation and sampling intervals; start a new run (--out) to train with other settings");
}
}  // namespace

void add_train_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("train", "Train a model on token shards (or resume a run)");
  struct Options {
    TrainOptions train;
    std::string resume, sampling = "random", inject, inject_overflow, precision;
    double min_lr = -1;
    bool dashboard = false;
    double dist_timeout = 300;
    std::string dist_overlap = "on";
    DashboardOptions web;
  };
  const auto o = std::make_shared<Options>();
  cmd->add_option("--model", o->train.model, "Preset, model config .json, HF folder, llama2.c .bin or anetrain checkpoint")
      ->capture_default_str();
  cmd->add_flag("--scratch", o->train.scratch, "Start from random weights (implied for presets and .json configs)");
  cmd->add_option("--resume", o->resume, "Continue the run in RUN_DIR from its latest checkpoint");
  cmd->add_option("--data", o->train.data, "Training shards (llama2.c uint16 or anetrain format), or a folder `prepare` wrote (its train shards; its val shards validate unless --val-data/--val-frac)");
  cmd->add_option("--val-data", o->train.val_data, "Validation shards, or a folder `prepare` wrote (its val shards)");
  cmd->add_option("--val-frac", o->train.val_frac, "Hold out this fraction of each training shard for validation")
      ->check(CLI::Range(0.0, 0.5));
  cmd->add_option("--lora", o->train.lora_rank,
                  "Fine-tune low-rank adapters of this rank over the frozen --model (0 = train every weight)")
      ->capture_default_str();
  cmd->add_option("--lora-alpha", o->train.lora_alpha, "Adapter scale numerator: outputs scale by alpha/rank (default: rank)");
  cmd->add_option("--lora-targets", o->train.lora_targets, "Projections that get adapters, of q,k,v,o,gate,up,down")
      ->capture_default_str();
  cmd->add_option("--lora-dropout", o->train.lora_dropout,
                  "Training drops each element of an adapter's input with this probability (PEFT's lora_dropout)")
      ->capture_default_str();
  cmd->add_option("--seq", o->train.seq, "Tokens per sequence")->capture_default_str();
  cmd->add_option("--batch", o->train.batch, "Sequences per micro-step")->capture_default_str();
  cmd->add_option("--accum", o->train.accum, "Micro-steps per optimizer step")->capture_default_str();
  cmd->add_option("--steps", o->train.steps, "Optimizer steps in total")->capture_default_str();
  cmd->add_option("--time-budget", o->train.time_budget_s,
                  "Seconds of training: the pace measured over the warmup (at most 200 steps) lowers --steps to fit (0 = off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--stop-at", o->train.stop_at, "Pause (checkpoint and exit) after this step; --resume continues");
  cmd->add_option("--lr", o->train.opt.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--min-lr", o->min_lr, "Final learning rate of the cosine (default 0.1×lr)");
  cmd->add_option("--warmup", o->train.opt.warmup, "Linear warmup steps")->capture_default_str();
  cmd->add_option("--wd", o->train.opt.weight_decay, "Decoupled weight decay on matrices")->capture_default_str();
  cmd->add_option("--beta1", o->train.opt.beta1, "AdamW β1")->capture_default_str();
  cmd->add_option("--beta2", o->train.opt.beta2, "AdamW β2")->capture_default_str();
  cmd->add_option("--clip", o->train.opt.clip, "Global gradient-norm clip (≤0 disables)")->capture_default_str();
  cmd->add_option("--act-clip", o->train.act_clip, "Clamp the residual stream to ±X after each block (0 = off)")
      ->capture_default_str();
  cmd->add_option("--base-dtype", o->train.base_dtype,
                  "With --lora: hold the frozen base in f32, bf16 or q8_0 (GGUF's blocks of 32); the run computes "
                  "with exactly those values")
      ->check(CLI::IsMember({"f32", "bf16", "q8_0"}))
      ->capture_default_str();
  cmd->add_option("--recompute", o->train.recompute,
                  "Activations the backward recomputes instead of keeping: none, attention (the attention "
                  "blocks) or blocks (whole layers; keeps each layer's input). Same gradients, less memory")
      ->check(CLI::IsMember({"none", "attention", "blocks"}))
      ->capture_default_str();
  cmd->add_option("--seed", o->train.seed, "Seed for initialisation and sampling")->capture_default_str();
  cmd->add_flag("--compact-vocab", o->train.compact_vocab, "Classifier only over token ids present in the data");
  cmd->add_option("--out", o->train.out, "Run directory (checkpoints, telemetry.jsonl, run.json): new or empty");
  cmd->add_flag("--out-force", o->train.out_force,
                "Put the run into a non-empty --out that is not a run folder (nothing there is deleted or overwritten)");
  cmd->add_option("--ckpt-every", o->train.ckpt_every, "Checkpoint every N steps")->capture_default_str();
  cmd->add_option("--keep", o->train.keep, "Keep the newest N checkpoints (plus the best)")->capture_default_str();
  cmd->add_flag("--save-best", o->train.save_best,
                "Periodic checkpoints only when the loss improved: the validation loss, or without validation data the step's training loss against the last saved checkpoint's");
  cmd->add_option("--eval-every", o->train.eval_every, "Validate every N steps")->capture_default_str();
  cmd->add_option("-z,--tokenizer", o->train.tokenizer, "The data's tokenizer (tokenizer.json / tokenizer.bin), for --sample-every");
  cmd->add_option("--sample-every", o->train.sample_every,
                  "Every N steps, a `sample` telemetry event: a greedy and a sampled completion (0 = off)")
      ->capture_default_str();
  cmd->add_option("--sample-prompt", o->train.sample_prompt, "Prompt of the samples")->capture_default_str();
  cmd->add_option("--sample-tokens", o->train.sample_tokens, "Tokens per sample")->capture_default_str();
  cmd->add_option("--eval-batches", o->train.eval_batches, "Validation batches per evaluation")->capture_default_str();
  cmd->add_option("--threads", o->train.threads, "CPU threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--backend", o->train.backend, "Kernel backend")->capture_default_str();
  cmd->add_option("--precision", o->precision,
                  "Matrix products in fp32, or bf16 mixed precision (fp32 master weights, optimizer, loss); "
                  "default: bf16 where the CPU multiplies bf16 natively (AVX512_BF16, AMX), else fp32")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  cmd->add_option("--log-every", o->train.log_every, "Progress every N steps")->capture_default_str();
  cmd->add_option("--sampling", o->sampling, "random windows, or shuffled non-overlapping windows per epoch")
      ->check(CLI::IsMember({"random", "epoch"}))
      ->capture_default_str();
  cmd->add_option("--max-nonfinite", o->train.max_nonfinite, "Stop after K consecutive non-finite steps")->capture_default_str();
  cmd->add_option("--inject-nan", o->inject, "Testing hook: force a NaN loss at these steps (comma-separated)");
  cmd->add_option("--loss-scale", o->train.loss_scale, "Initial dynamic loss scale of fp16 backends (ane-sim, ane)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--loss-scale-window", o->train.loss_scale_window, "Clean steps before an fp16 backend's loss scale doubles")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--inject-overflow", o->inject_overflow,
                  "Testing hook: an infinite gradient at these steps (comma-separated; fp16 backends)");
  cmd->add_option("--dist-timeout", o->dist_timeout,
                  "Under mpirun/srun: seconds a rank waits for the others before it names the missing one and "
                  "ends the job")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--dist-overlap", o->dist_overlap,
                  "Under mpirun/srun: sum each layer's gradients while the backward pass goes on (off: after it)")
      ->check(CLI::IsMember({"on", "off"}))->capture_default_str();
  cmd->add_flag("--ane-strict", o->train.ane_strict,
                "A program the Neural Engine rejects is an error (default: its stage runs on the CPU, with a warning, an "
                "ane_fallback telemetry event and a count in the progress line)");
  cmd->add_flag("--dashboard", o->dashboard, "Serve this run's live dashboard from this process (prints the URL)");
  cmd->add_option("--port", o->web.port, "Port of --dashboard (0 picks a free one)")->capture_default_str();
  cmd->add_option("--host", o->web.host, "Address --dashboard listens on (default: this machine only)")->capture_default_str();
  // One table of ranges (train/train_options.cpp) checks the flags here, the C API's options and
  // run.json on --resume.
  check_like_train(cmd);
  cmd->get_option("--threads")->check(thread_count());
  cmd->get_option("--stop-at")->check(within(Range::between(0, 1099511627776.0).whole()));
  cmd->callback([cmd, &run, o] {
    run = [cmd, o] {
      auto serve_dashboard = [o](const std::string& run_dir) {
        return o->dashboard ? start_dashboard(o->web, run_dir) : nullptr;
      };
      // Unset: the backend's preferred precision (cpu: bf16 where it has native bf16 products).
      auto resolved_precision = [&] {
        if (!o->precision.empty()) return o->precision;
        return precision_name(preferred_precision(o->train.backend));
      };
      auto steps_of = [](const std::string& list) {
        std::vector<int64_t> v;
        std::stringstream ss(list);
        for (std::string tok; std::getline(ss, tok, ',');)
          if (!tok.empty()) v.push_back(std::stoll(tok));
        return v;
      };
      std::vector<int64_t> nan_steps = steps_of(o->inject);
      TrainOptions opts = o->train;
      // Under mpirun/srun with several ranks: MPI starts here (a plain run never touches it).
      std::unique_ptr<Comm> world = open_world();
      world->set_timeout(o->dist_timeout);
      const bool lead = world->rank() == 0;
      // Everything from here runs inside one handler: an error on one rank must end every rank at
      // once, not leave the others waiting for it until --dist-timeout.
      auto job = [&]() -> int {
      if (o->resume.empty() && o->train.data.empty()) {
        if (world->size() > 1)
          fail("train: the built-in default job runs in one process; under mpirun give --data SHARD... and --out");
        // No data: the built-in default job (README quick start). It trains its own model on its
        // own corpus, so an option that shapes a job (--model, --lora, --seq, ...) would be
        // silently ignored: refuse it instead of training something the user did not ask for.
        static const std::set<std::string> kQuickstartOptions = {
            "--out", "--steps", "--time-budget", "--threads", "--backend", "--precision",
            "--dashboard", "--port", "--host", "--help"};
        std::string ignored;
        for (const CLI::Option* opt : cmd->get_options())
          if (opt->count() > 0 && !kQuickstartOptions.count(opt->get_name()))
            ignored += (ignored.empty() ? "" : ", ") + opt->get_name();
        if (!ignored.empty())
          fail("train: " + ignored + " needs --data SHARD... (or --resume RUN); without them `train` runs the "
               "built-in default job, which takes only --out, --steps, --time-budget, --threads, --backend, "
               "--precision and --dashboard");
        QuickstartOptions q;
        q.out = o->train.out;
        q.threads = o->train.threads;
        q.backend = o->train.backend;
        q.precision = resolved_precision();
        if (cmd->count("--steps")) {
          q.steps = o->train.steps;
          q.time_budget_s = 0;  // asked for a number of steps: train exactly that many
        }
        if (cmd->count("--time-budget")) q.time_budget_s = o->train.time_budget_s;
        if (q.out.empty()) q.out = default_quickstart_out();
        auto server = serve_dashboard(q.out);
        return run_quickstart(q);
      }
      if (!o->resume.empty()) {
        // The run's own settings, with only the flags that cannot change its math overridable.
        // (Ranks other than 0 take rank 0's settings in the session; their machine may not hold the run.)
        const std::string path = (std::filesystem::path(o->resume) / "run.json").string();
        std::error_code ec;
        const bool settings_read = lead || std::filesystem::exists(path, ec);
        if (settings_read) {
          try {
            opts = TrainOptions::from_json(RunDir::read_settings(o->resume));
          } catch (const nlohmann::json::exception& e) {
            fail(path + ": unreadable run settings: " + e.what());
          }
        }
        auto given = [&](const char* flag) { return cmd->count(flag) > 0; };
        for (const ResumeOverride& r : kResumeOverrides)
          if (r.take && given(r.flag)) r.take(opts, o->train);
        if (given("--lora-dropout") && o->train.lora_dropout != opts.lora_dropout) {
          char p[32];
          std::snprintf(p, sizeof p, "%g", opts.lora_dropout);
          fail("--resume " + o->resume + ": the run trains with --lora-dropout " + p +
               " and keeps it (a resumed run draws the masks an uninterrupted one would)");
        }
        if (given("--base-dtype") && o->train.base_dtype != opts.base_dtype)
          fail("--resume " + o->resume + ": the run holds its base in " + opts.base_dtype + " and keeps it");
        if (given("--precision") && o->precision != opts.precision)
          fail("--resume " + o->resume + ": the run trains in " + opts.precision +
               " and keeps it (its checkpoints resume bit-exactly only in the precision they were made in)");
        if (settings_read) {
          TrainOptions asked = o->train;
          asked.opt.min_lr = o->min_lr;
          asked.precision = o->precision;
          asked.sampling = o->sampling == "epoch" ? Sampling::epoch : Sampling::random;
          refuse_changed_settings(cmd, o->resume, asked, opts);
        }
        opts.out = o->resume;
        opts.stop_at = o->train.stop_at;
      } else {
        opts.opt.min_lr = o->min_lr >= 0 ? o->min_lr : 0.1 * opts.opt.lr;
        opts.sampling = o->sampling == "epoch" ? Sampling::epoch : Sampling::random;
        opts.precision = resolved_precision();
        if (opts.out.empty()) fail("train: --out RUN_DIR is required (where checkpoints and telemetry go)");
      }
      opts.inject_nan = nan_steps;
      opts.inject_overflow = steps_of(o->inject_overflow);
      auto server = lead ? serve_dashboard(opts.out) : nullptr;
      const TrainResult r = train(opts, o->resume, Parallel{world.get(), o->dist_overlap == "on"});
      if (!lead) return 0;
      if (r.interrupted) {
        std::printf("stopped at step %lld; checkpoint %s\nresume with: anetrain train --resume %s\n",
                    (long long)r.step, r.checkpoint.c_str(), opts.out.c_str());
      } else {
        std::printf("done: %lld steps, final loss %.4f%s\ncheckpoint: %s\ntelemetry:  %s/telemetry.jsonl\n",
                    (long long)r.step, r.last_loss,
                    r.last_val >= 0 ? (", val loss " + std::to_string(r.last_val)).c_str() : "",
                    r.checkpoint.c_str(), opts.out.c_str());
      }
      return 0;
      };
      try {
        return job();
      } catch (const std::exception& e) {
        if (world->size() > 1) world->abort(std::string("error: ") + e.what(), 1);
        throw;
      }
    };
  });
}

}  // namespace anetrain
