// TrainOptions ⇄ JSON (RUN/run.json), so a resumed run uses the settings it started with, and
// the one table of their allowed ranges that the CLI, the C API and --resume all check.
#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/option_check.h"
#include "data/prepared_folder.h"
#include "model/held_base.h"
#include "model/workspace.h"
#include "train/trainer.h"

namespace anetrain {

namespace {
constexpr double kMaxInt = 2147483647.0;
constexpr double kMaxSteps = 1099511627776.0;  // 2^40: far past any run, well inside int64
}  // namespace

const std::vector<TrainOptionRule>& train_option_rules() {
  static const std::vector<TrainOptionRule> rules = {
      {"seq", "--seq", Range::between(1, 1 << 20).whole()},
      {"batch", "--batch", Range::between(1, 1 << 20).whole()},
      {"accum", "--accum", Range::between(1, 1 << 20).whole()},
      {"steps", "--steps", Range::between(1, kMaxSteps).whole()},
      {"time_budget_s", "--time-budget", Range::between(0, 1e9)},
      {"lr", "--lr", Range::above(0)},
      {"min_lr", "--min-lr", Range::at_least(0)},
      {"warmup", "--warmup", Range::between(0, kMaxInt).whole()},
      {"lr_micro_steps", "lr_micro_steps", Range::between(1, 1 << 20).whole()},  // run.json only (import-seed)
      {"wd", "--wd", Range::at_least(0)},
      {"beta1", "--beta1", Range{0, 1, false, true}},
      {"beta2", "--beta2", Range{0, 1, false, true}},
      {"eps", "--eps", Range::above(0)},
      {"clip", "--clip", Range{}},  // ≤ 0 turns clipping off; only NaN and ±inf are refused
      {"act_clip", "--act-clip", Range::at_least(0)},
      {"val_frac", "--val-frac", Range::between(0, 0.5)},
      {"ckpt_every", "--ckpt-every", Range::between(0, kMaxInt).whole()},
      {"keep", "--keep", Range::between(0, 1 << 20).whole()},
      {"eval_every", "--eval-every", Range::between(0, kMaxInt).whole()},
      {"eval_batches", "--eval-batches", Range::between(0, 1 << 20).whole()},
      {"sample_every", "--sample-every", Range::between(0, kMaxInt).whole()},
      {"sample_tokens", "--sample-tokens", Range::between(0, 1 << 20).whole()},
      {"log_every", "--log-every", Range::between(0, kMaxInt).whole()},
      {"max_nonfinite", "--max-nonfinite", Range::between(1, kMaxInt).whole()},
      {"loss_scale", "--loss-scale", Range{0, 1e30, true, false}},
      {"loss_scale_window", "--loss-scale-window", Range::between(1, kMaxInt).whole()},
      {"lora_rank", "--lora", Range::between(0, 4096).whole()},
      {"lora_alpha", "--lora-alpha", Range::at_least(0)},
      {"lora_dropout", "--lora-dropout", Range{0, 1, false, true}},
  };
  return rules;
}

void TrainOptions::validate(bool cli_names) const {
  const nlohmann::json j = to_json();
  for (const TrainOptionRule& r : train_option_rules()) {
    const std::string name = cli_names ? r.flag : std::string("option \"") + r.key + "\"";
    check_option(name, j.at(r.key).get<double>(), r.range);
  }
  check_threads(cli_names ? "--threads" : "option \"threads\"", threads);
  if (lora_rank == 0 && lora_dropout > 0)
    fail(std::string(cli_names ? "--lora-dropout" : "option \"lora_dropout\"") +
         " drops adapter inputs: it needs adapters (" + (cli_names ? "--lora R" : "option \"lora_rank\" > 0") + ")");
  if (lora_rank > 0) {
    const std::string name = cli_names ? "--lora-targets" : "option \"lora_targets\"";
    const LoraConfig l = lora();
    if (l.targets.empty()) fail(name + " names no projection (of q, k, v, o, gate, up, down)");
    for (size_t i = 0; i < l.targets.size(); ++i) {
      const auto& names = lora_target_names();
      if (std::find(names.begin(), names.end(), l.targets[i]) == names.end())
        fail(name + ": '" + l.targets[i] + "' is not one of q, k, v, o, gate, up, down");
      if (std::find(l.targets.begin(), l.targets.begin() + long(i), l.targets[i]) != l.targets.begin() + long(i))
        fail(name + ": '" + l.targets[i] + "' is named twice");
    }
  }
  const std::string dtype_name = cli_names ? "--base-dtype" : "option \"base_dtype\"";
  if (parse_base_dtype(base_dtype, dtype_name) != WeightFormat::f32 && lora_rank == 0)
    fail(dtype_name + " holds a frozen base: it needs adapters (" + (cli_names ? "--lora R" : "option \"lora_rank\" > 0") +
         "); full training updates the base in fp32");
  parse_recompute(recompute, cli_names ? "--recompute" : "option \"recompute\"");
  if (stop_at < 0 || double(stop_at) > kMaxSteps)
    fail(std::string(cli_names ? "--stop-at" : "option \"stop_at\"") + " must be 0 (off) or a step, got " +
         std::to_string(stop_at));
}

LoraConfig TrainOptions::lora() const {
  LoraConfig l;
  l.rank = lora_rank;
  l.alpha = lora_alpha > 0 ? lora_alpha : double(lora_rank);
  l.dropout = lora_dropout;
  std::string rest = lora_targets;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string t = rest.substr(0, comma);
    if (!t.empty()) l.targets.push_back(t);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
  }
  return l;
}

void TrainOptions::make_paths_absolute() {
  // run.json outlives the directory the run was started from: `--resume` from elsewhere (or the
  // C API in another process) must find the same files.
  namespace fs = std::filesystem;
  auto absolute = [](std::string& p) {
    if (!p.empty()) p = fs::absolute(p).lexically_normal().string();
  };
  for (auto& p : data) absolute(p);
  for (auto& p : val_data) absolute(p);
  absolute(tokenizer);
  absolute(out);
  std::error_code ec;
  if (fs::exists(model, ec)) absolute(model);  // a preset's name stays a name
}

void TrainOptions::expand_prepared_folders() {
  std::vector<std::string> folders_val = anetrain::expand_prepared_folders(data);
  expand_validation_folders(val_data);
  if (val_data.empty() && val_frac == 0) val_data = std::move(folders_val);
}

nlohmann::json TrainOptions::to_json() const {
  return {{"model", model},
          {"scratch", scratch},
          {"data", data},
          {"val_data", val_data},
          {"val_frac", val_frac},
          {"seq", seq},
          {"batch", batch},
          {"accum", accum},
          {"steps", steps},
          {"lr", opt.lr},
          {"min_lr", opt.min_lr},
          {"warmup", opt.warmup},
          {"lr_micro_steps", opt.lr_micro_steps},
          {"wd", opt.weight_decay},
          {"beta1", opt.beta1},
          {"beta2", opt.beta2},
          {"eps", opt.eps},
          {"clip", opt.clip},
          {"act_clip", act_clip},
          {"seed", seed},
          {"compact_vocab", compact_vocab},
          {"out", out},
          {"ckpt_every", ckpt_every},
          {"keep", keep},
          {"save_best", save_best},
          {"eval_every", eval_every},
          {"eval_batches", eval_batches},
          {"tokenizer", tokenizer},
          {"sample_every", sample_every},
          {"sample_tokens", sample_tokens},
          {"sample_prompt", sample_prompt},
          {"threads", threads},
          {"backend", backend},
          {"precision", precision},
          {"time_budget_s", time_budget_s},
          {"log_every", log_every},
          {"sampling", sampling == Sampling::epoch ? "epoch" : "random"},
          {"max_nonfinite", max_nonfinite},
          {"loss_scale", loss_scale},
          {"loss_scale_window", loss_scale_window},
          {"ane_strict", ane_strict},
          {"base_dtype", base_dtype},
          {"lora_rank", lora_rank},
          {"lora_alpha", lora_alpha},
          {"lora_targets", lora_targets},
          {"lora_dropout", lora_dropout},
          {"recompute", recompute}};
}

TrainOptions TrainOptions::from_json(const nlohmann::json& j) {
  TrainOptions o;
  o.model = j.at("model").get<std::string>();
  o.scratch = j.at("scratch").get<bool>();
  o.data = j.at("data").get<std::vector<std::string>>();
  o.val_data = j.at("val_data").get<std::vector<std::string>>();
  o.val_frac = j.at("val_frac").get<double>();
  o.seq = j.at("seq").get<int>();
  o.batch = j.at("batch").get<int>();
  o.accum = j.at("accum").get<int>();
  o.steps = j.at("steps").get<int64_t>();
  o.opt.lr = j.at("lr").get<double>();
  o.opt.min_lr = j.at("min_lr").get<double>();
  o.opt.warmup = j.at("warmup").get<int>();
  o.opt.lr_micro_steps = j.value("lr_micro_steps", 1);  // a schedule counted in micro-steps: import-seed's runs
  o.opt.weight_decay = j.at("wd").get<double>();
  o.opt.beta1 = j.at("beta1").get<double>();
  o.opt.beta2 = j.at("beta2").get<double>();
  o.opt.eps = j.at("eps").get<double>();
  o.opt.clip = j.at("clip").get<double>();
  o.act_clip = j.at("act_clip").get<double>();
  o.seed = j.at("seed").get<uint64_t>();
  o.compact_vocab = j.at("compact_vocab").get<bool>();
  o.out = j.at("out").get<std::string>();
  o.ckpt_every = j.at("ckpt_every").get<int>();
  o.keep = j.at("keep").get<int>();
  o.save_best = j.at("save_best").get<bool>();
  o.eval_every = j.at("eval_every").get<int>();
  o.eval_batches = j.at("eval_batches").get<int>();
  o.threads = j.at("threads").get<int>();
  o.backend = j.at("backend").get<std::string>();
  o.log_every = j.at("log_every").get<int>();
  o.sampling = j.at("sampling").get<std::string>() == "epoch" ? Sampling::epoch : Sampling::random;
  o.max_nonfinite = j.at("max_nonfinite").get<int>();
  // Added with the fp16 backends; runs written before keep the defaults.
  o.loss_scale = j.value("loss_scale", LossScaling::kInitial);
  o.loss_scale_window = j.value("loss_scale_window", 1000);
  // Added with bf16 training; runs written before trained in fp32.
  o.precision = j.value("precision", std::string("fp32"));
  o.time_budget_s = j.value("time_budget_s", 0.0);
  // Added with the dashboard's samples.
  o.tokenizer = j.value("tokenizer", std::string());
  o.sample_every = j.value("sample_every", 0);
  o.sample_tokens = j.value("sample_tokens", 48);
  o.sample_prompt = j.value("sample_prompt", std::string("Once upon a time"));
  o.ane_strict = j.value("ane_strict", false);  // added with the per-program CPU fallback
  o.base_dtype = j.value("base_dtype", std::string("f32"));  // added with held bases
  o.lora_rank = j.value("lora_rank", 0);          // added with LoRA fine-tuning
  o.lora_alpha = j.value("lora_alpha", 0.0);
  o.lora_targets = j.value("lora_targets", std::string("q,k,v,o,gate,up,down"));
  o.lora_dropout = j.value("lora_dropout", 0.0);  // added with adapter dropout
  o.recompute = j.value("recompute", std::string("none"));  // added with activation recomputation
  return o;
}

}  // namespace anetrain
