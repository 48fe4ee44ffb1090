// `anetrain bench train MODEL [--lora R] --peer pytorch`: one training step (forward, backward,
// global-norm clip, AdamW) of anetrain against eager PyTorch on the same model, shape and thread
// count, in one invocation; with --lora both train low-rank adapters over a frozen base, with
// --recompute both recompute the same blocks. Rounds alternate peer and anetrain so that a machine that slows down mid-run
// slows both; each side runs in its own process so its peak RSS is its own.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "cli/bench_util.h"
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "contract/registry.h"
#include "core/error.h"
#include "core/threads.h"
#include "core/rng.h"
#include "formats/load.h"
#include "model/flops.h"
#include "model/params.h"
#include "model/workspace.h"
#include "telemetry/jsonl.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/step.h"
#include "train/trainer.h"

namespace anetrain {

const char* pytorch_train_peer_source();  // bench/peers/pytorch_train.py, embedded at build time

namespace {

namespace fs = std::filesystem;

struct BenchTrainOptions {
  std::string model = "stories110m", precision = "both", peer = "pytorch", python = "/usr/bin/python3";
  int batch = 1, seq = 256, steps = 3, rounds = 2, threads = 0;
  bool worker = false;
  TrainOptions lora;  // only its lora_rank, lora_alpha and lora_targets: train --lora's meaning
  std::string recompute = "none";  // train --recompute's; the peer checkpoints the same blocks
};

// Both sides' command-line words for the adapters ("" without them).
std::string lora_args(const BenchTrainOptions& o) {
  if (o.lora.lora_rank <= 0) return "";
  char alpha[32];
  std::snprintf(alpha, sizeof alpha, "%.17g", o.lora.lora().alpha);
  return " --lora " + std::to_string(o.lora.lora_rank) + " --lora-alpha " + alpha + " --lora-targets " +
         shell_quote(o.lora.lora_targets);
}

// The measured side of one configuration, as both workers print it.
struct Sample {
  std::vector<double> ms;
  double peak_rss_mb = 0;
};

// Runs a worker command and reads the JSON line it ends with (whole lines, however long).
Sample run_worker(const std::string& cmd, const std::string& who) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) fail("bench train: cannot start " + who);
  std::string out, last, line;
  std::array<char, 4096> buf;
  while (std::fgets(buf.data(), int(buf.size()), p)) {
    line += buf.data();
    if (line.back() != '\n') continue;
    out += line;
    if (line[0] == '{') last = line;
    line.clear();
  }
  out += line;
  if (!line.empty() && line[0] == '{') last = line;
  const int rc = ::pclose(p);
  if (rc != 0 || last.empty())
    fail("bench train: " + who + " failed (exit " + std::to_string(rc) + "):\n" + out.substr(out.size() > 2000 ? out.size() - 2000 : 0));
  const auto j = nlohmann::json::parse(last);
  return {j.at("ms").get<std::vector<double>>(), j.at("peak_rss_mb").get<double>()};
}

// The anetrain side: warm-up, then timed steps; prints {"ms": [...], "peak_rss_mb": ...}.
int worker(const BenchTrainOptions& o) {
  if (o.threads > 0) {
    set_compute_threads(o.threads);
  }
  auto be = make_backend("cpu", parse_precision(o.precision));
  LoadedModel lm = load_model(o.model);
  Model& m = *lm.model;
  if (o.lora.lora_rank > 0) {  // as train --lora sets a run up: the loaded weights frozen, fresh adapters
    m.add_adapters(o.lora.lora());
    init_adapters(m, 1);
  }
  Workspace ws(m.cfg, o.batch, o.seq, nullptr, /*keep_logits=*/false, flash_attention_for(*be, m.cfg, o.batch, o.seq),
               parse_recompute(o.recompute, "--recompute"));
  Rng rng(1);
  for (size_t i = 0; i < ws.inputs.size(); ++i) {
    ws.inputs[i] = int32_t(rng.below(uint64_t(m.cfg.vocab_size)));
    ws.targets[i] = int32_t(rng.below(uint64_t(m.cfg.vocab_size)));
  }
  AdamWConfig oc;
  oc.total_steps = o.steps + 1;
  oc.warmup = 0;
  AdamW opt(m, oc);
  // The step a training session runs (train/step.h), on one micro-batch: the bf16 weight copy
  // refilled in the optimizer's pass, as in training.
  const StepContext ctx{*be, m, opt};
  StepPolicy policy;
  policy.scaling = loss_scaling_for(*be);
  TrainState st;
  begin_loss_scaling(policy.scaling, st);
  MicroBatches batches;
  batches.next = [&]() -> Workspace& { return ws; };
  std::vector<double> ms;
  double loss = 0, phase[3] = {0, 0, 0};  // forward, backward, optimizer (zeroing, norm, AdamW)
  for (int s = 0; s <= o.steps; ++s) {
    const StepResult r = train_step(ctx, policy, batches, st);
    loss = r.loss;
    if (s == 0) continue;  // warm-up: first touch of gradients, optimizer state, primitives
    ms.push_back(r.ms);
    phase[0] += r.forward_ms;
    phase[1] += r.backward_ms;
    phase[2] += r.ms - r.forward_ms - r.backward_ms;
  }
  nlohmann::json phases = {{"forward", phase[0] / o.steps}, {"backward", phase[1] / o.steps},
                           {"optimizer", phase[2] / o.steps}};
  std::printf("%s\n", nlohmann::json{{"ms", ms}, {"peak_rss_mb", peak_rss_mb()}, {"loss", loss}, {"phase_ms", phases}}
                          .dump()
                          .c_str());
  return 0;
}

int orchestrate(const BenchTrainOptions& o) {
  if (o.peer != "pytorch" && o.peer != "none") fail("bench train: --peer must be pytorch or none");
  LoadedModel lm = load_model(o.model);
  if (o.lora.lora_rank > 0) lm.model->add_adapters(o.lora.lora());  // checks the targets before any side runs
  const ModelConfig cfg = lm.model->cfg;
  lm.model.reset();
  ModelConfig base_cfg = cfg;
  base_cfg.lora = LoraConfig{};
  const int threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  const std::vector<std::string> precisions =
      o.precision == "both" ? std::vector<std::string>{"fp32", "bf16"} : std::vector<std::string>{o.precision};
  for (const auto& p : precisions) parse_precision(p);

  // A fresh private directory (mkdtemp: mode 0700, never an existing one), removed however we leave.
  std::string tmpl = (fs::temp_directory_path() / "anetrain_bench_train_XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) fail("bench train: cannot create a temporary directory in " + fs::temp_directory_path().string());
  const fs::path dir = tmpl;
  struct RemoveOnExit {
    fs::path d;
    ~RemoveOnExit() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{dir};
  const std::string cfg_path = (dir / "config.json").string(), peer_path = (dir / "pytorch_train.py").string();
  std::ofstream(cfg_path) << config_to_json(base_cfg).dump(2);
  std::ofstream(peer_path) << pytorch_train_peer_source();

  const std::string self = fs::read_symlink("/proc/self/exe").string();  // popen runs /bin/sh
  // A frozen base needs no weight gradients: its backward is the activations' alone; the adapters'
  // products count like any trainable matrix's (model/flops.h).
  const double rows = double(o.batch) * o.seq;
  const double flops = training_step_flops(ParamTable(cfg), cfg, o.seq, rows, rows);
  std::printf("bench train %s: B=%d T=%d, AdamW + clip, %d threads, %.1f GFLOP/step, recompute %s%s\n", o.model.c_str(),
              o.batch, o.seq, threads, flops / 1e9, o.recompute.c_str(),
              o.lora.lora_rank > 0 ? (", LoRA r=" + std::to_string(o.lora.lora_rank) + " on " + o.lora.lora_targets +
                                      " over a frozen base")
                                         .c_str()
                                   : "");
  std::printf("cpu: %s (oneDNN dispatch: %s), commit %s\n", cpu_model_name().c_str(), matrix_isa().c_str(),
              git_commit().c_str());
  const std::string shape = " --batch " + std::to_string(o.batch) + " --seq " + std::to_string(o.seq) + " --steps " +
                            std::to_string(o.steps) + " --threads " + std::to_string(threads) + lora_args(o) +
                            " --recompute " + o.recompute;
  std::map<std::string, Sample> total;  // "anetrain bf16", "pytorch fp32", ...
  for (int r = 1; r <= o.rounds; ++r)
    for (const auto& p : precisions) {
      std::vector<std::pair<std::string, std::string>> sides;
      if (o.peer == "pytorch")
        // The peer runs with OpenMP's defaults, as its users run it (not our short spin).
        sides.push_back({"pytorch " + p, "env -u GOMP_SPINCOUNT " + shell_quote(o.python) + " " + shell_quote(peer_path) + " " +
                                             shell_quote(cfg_path) + shape + " --precision " + p});
      sides.push_back({"anetrain " + p, shell_quote(self) + " bench train " + shell_quote(o.model) + " --worker" + shape +
                                            " --precision " + p});
      for (const auto& [who, cmd] : sides) {
        const Sample s = run_worker(cmd, who);
        auto& t = total[who];
        t.ms.insert(t.ms.end(), s.ms.begin(), s.ms.end());
        t.peak_rss_mb = std::max(t.peak_rss_mb, s.peak_rss_mb);
        std::printf("  round %d  %-14s %9.1f ms/step (median of %zu)\n", r, who.c_str(), median(s.ms), s.ms.size());
        std::fflush(stdout);
      }
    }
  std::printf("\n%-14s %12s %10s %12s %s\n", "", "ms/step", "GFLOP/s", "peak RSS MB",
              o.peer == "pytorch" ? "  time vs pytorch (same precision)" : "");
  for (const auto& p : precisions)
    for (const char* side : {"anetrain", "pytorch"}) {
      const std::string who = std::string(side) + " " + p;
      if (!total.count(who)) continue;
      const double ms = median(total[who].ms);
      std::printf("%-14s %12.1f %10.1f %12.0f", who.c_str(), ms, flops / (ms / 1e3) / 1e9, total[who].peak_rss_mb);
      if (std::string(side) == "anetrain" && total.count("pytorch " + p))
        std::printf("   %.3f×", ms / median(total["pytorch " + p].ms));
      std::printf("\n");
    }
  if (total.count("anetrain bf16") && total.count("pytorch bf16") && total.count("pytorch fp32"))
    std::printf("anetrain bf16 vs pytorch fp32: %.3f× the time\n",
                median(total["anetrain bf16"].ms) / median(total["pytorch fp32"].ms));
  return 0;
}

}  // namespace

void add_bench_train_command(CLI::App* bench, Command& run) {
  const auto o = std::make_shared<BenchTrainOptions>();
  auto* tr = bench->add_subcommand("train", "A training step (AdamW + clip) vs eager PyTorch, alternating");
  tr->add_option("model", o->model, "MODEL (preset, config, checkpoint; weights are re-initialised by neither side)")
      ->capture_default_str();
  tr->add_option("--batch", o->batch, "B")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--seq", o->seq, "T")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--steps", o->steps, "Timed steps per round and side (after one warm-up step)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--rounds", o->rounds, "Alternations of peer and anetrain")->capture_default_str()->check(CLI::PositiveNumber);
  tr->add_option("--precision", o->precision, "fp32, bf16 (PyTorch: bf16 autocast) or both")
      ->capture_default_str()->check(CLI::IsMember({"fp32", "bf16", "both"}));
  tr->add_option("--peer", o->peer, "pytorch (Debian python3-torch), or none")->capture_default_str();
  tr->add_option("--python", o->python, "Python with torch for the peer")->capture_default_str();
  tr->add_option("--threads", o->threads, "Threads for both sides (0 = all cores)")->capture_default_str()->check(thread_count());
  tr->add_option("--lora", o->lora.lora_rank, "Both sides train adapters of this rank over a frozen base (0: full training)")
      ->capture_default_str()->check(CLI::Range(0, 4096));
  tr->add_option("--lora-alpha", o->lora.lora_alpha, "Adapter scale numerator (default: rank), as train's")
      ->check(CLI::NonNegativeNumber);
  tr->add_option("--lora-targets", o->lora.lora_targets, "Projections with adapters, of q,k,v,o,gate,up,down")
      ->capture_default_str();
  tr->add_option("--recompute", o->recompute, "Activations recomputed in the backward (as train's; PyTorch: torch.utils.checkpoint): none, attention, blocks")
      ->capture_default_str()->check(CLI::IsMember({"none", "attention", "blocks"}));
  tr->add_flag("--worker", o->worker, "Internal: run the anetrain side and print its JSON line")->group("");
  tr->callback([&run, o] {
    run = [o] { return o->worker ? worker(*o) : orchestrate(*o); };
  });
}

}  // namespace anetrain
