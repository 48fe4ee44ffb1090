// `anetrain eval MODEL (--text FILE | --data SHARD… | --choices FILE.jsonl)`: perplexity by
// llama.cpp's protocol (or a sliding window) with bits per byte, or multiple-choice accuracy
// (HellaSwag's JSONL) — through the training forward on any backend and precision. The logic is
// in train/eval_*.cpp; this file reads the inputs and reports. docs/eval.md.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <omp.h>
#include <sstream>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "contract/registry.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "data/prepared_folder.h"
#include "data/shard.h"
#include "formats/load.h"
#include "telemetry/progress.h"
#include "train/eval_choices.h"
#include "train/eval_text.h"

namespace anetrain {

namespace {
struct EvalOptions {
  std::string model, tok_path, text, choices, scores, backend = "cpu", precision = "fp32";
  std::vector<std::string> data;
  int ctx = 0, stride = 0, rows = 0, threads = 0;
  int64_t chunks = 0;
  bool json = false, ane_strict = false, quiet = false;
};

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path + ": cannot open");
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

TokenStream read_shards(const std::vector<std::string>& paths, int vocab) {
  TokenStream s;
  std::vector<std::unique_ptr<TokenShard>> shards;
  bool masked = false;
  for (const auto& p : paths) {
    shards.push_back(std::make_unique<TokenShard>(p));
    shards.back()->check_vocab(uint32_t(vocab));
    masked = masked || shards.back()->has_mask();
  }
  for (const auto& sh : shards)
    for (size_t i = 0; i < sh->size(); ++i) {
      s.ids.push_back(int32_t(sh->at(i)));
      if (masked) s.counts.push_back(sh->counts(i));
    }
  return s;
}

// On a terminal one line rewritten in place; elsewhere a line per tenth, so logs stay short.
EvalProgress progress_printer(const char* unit, bool quiet) {
  if (quiet) return {};
  const auto t0 = std::chrono::steady_clock::now();
  const bool tty = isatty(2) != 0;
  auto last_tenth = std::make_shared<int64_t>(0);
  return [=](int64_t done, int64_t total, double ppl) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double eta = done > 0 ? s * double(total - done) / double(done) : 0;
    const int64_t tenth = total > 0 ? done * 10 / total : 10;
    if (!tty && tenth == *last_tenth && done < total) return;
    *last_tenth = tenth;
    char ppl_text[48] = "";
    if (std::isfinite(ppl)) std::snprintf(ppl_text, sizeof ppl_text, "  ppl %.4f", ppl);
    std::fprintf(stderr, "%seval: %lld/%lld %s%s  ETA %s%s", tty ? "\r\033[K" : "", (long long)done,
                 (long long)total, unit, ppl_text, format_duration(eta).c_str(), tty && done < total ? "" : "\n");
    std::fflush(stderr);
  };
}

nlohmann::ordered_json perplexity_json(const PerplexityReport& r) {
  nlohmann::ordered_json j;
  j["perplexity"] = r.perplexity;
  j["perplexity_err"] = r.perplexity_err;
  j["nll"] = r.nll;
  j["bits_per_byte"] = r.bits_per_byte >= 0 ? nlohmann::ordered_json(r.bits_per_byte) : nlohmann::ordered_json();
  j["tokens"] = r.tokens;
  j["bytes"] = r.bytes;
  j["chunks"] = r.chunks;
  j["stream_tokens"] = r.stream_tokens;
  return j;
}

void write_scores(const std::string& path, const ChoiceReport& r) {
  std::string out;
  for (const ChoiceScore& s : r.items) {
    nlohmann::ordered_json j{{"line", s.line},        {"label", s.label}, {"pred", s.pred},
                             {"pred_norm", s.pred_norm}, {"logprob", s.logprob}, {"chars", s.chars},
                             {"tokens", s.tokens}};
    out += j.dump() + "\n";
  }
  write_file_atomic(path, out.data(), out.size());
}

// --data DIR of a folder `prepare` wrote: its held-out shards, the figure a user evaluates a model
// by; its training shards where it has none. Which ones is said, not guessed at silently.
std::vector<std::string> shards_to_score(std::vector<std::string> shards, bool quiet) {
  expand_folders(shards, [quiet](const PreparedFolder& f) {
    const bool held_out = !f.val.empty();
    const std::vector<std::string>& pick = held_out ? f.val : f.train;
    if (!quiet)
      std::fprintf(stderr, "eval: %s: its %zu %s shard(s)%s\n", f.dir.c_str(), pick.size(),
                   held_out ? "validation" : "training", held_out ? "" : " (it holds no validation shards)");
    return pick;
  });
  return shards;
}

int run_eval(const EvalOptions& o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  if (int(!o.text.empty()) + int(!o.data.empty()) + int(!o.choices.empty()) != 1)
    fail("eval: give one of --text FILE, --data SHARD… or --choices FILE.jsonl");
  if (!o.scores.empty() && o.choices.empty()) fail("eval: --scores goes with --choices");
  if (!o.choices.empty() && (o.ctx || o.stride || o.chunks))
    fail("eval: --ctx, --stride and --chunks go with --text or --data");
  if (!o.scores.empty()) refuse_output_over_input({o.scores}, {o.choices, o.model});
  auto be = make_backend(o.backend, parse_precision(o.precision));
  if (CompiledPrograms* programs = be->caps().programs) programs->allow_program_fallback(!o.ane_strict);
  LoadedModel lm = load_model(o.model);
  Model& m = *lm.model;
  std::unique_ptr<Tokenizer> tok;
  if (o.data.empty() || !o.tok_path.empty()) {
    tok = load_tokenizer(find_tokenizer(o.model, o.tok_path), m.cfg.vocab_size);
  } else {
    try {  // shards are already ids: a tokenizer only adds BOS and bits per byte
      tok = load_tokenizer(find_tokenizer(o.model, ""), m.cfg.vocab_size);
    } catch (const Error&) {
      if (!o.quiet) std::fprintf(stderr, "eval: no tokenizer found (-z FILE): no BOS at chunk starts, no bits per byte\n");
    }
  }
  if (tok && tok->vocab_size() > m.cfg.vocab_size)
    fail("eval: the tokenizer has " + std::to_string(tok->vocab_size()) + " ids but the model only " +
         std::to_string(m.cfg.vocab_size));
  nlohmann::ordered_json j;
  if (!o.choices.empty()) {
    const std::vector<ChoiceItem> items = read_choices(o.choices);
    const ChoiceReport r = score_choices(*be, m, *tok, items, o.choices, o.rows, progress_printer("endings", o.quiet));
    if (!o.scores.empty()) write_scores(o.scores, r);
    j = {{"acc", r.acc}, {"acc_norm", r.acc_norm}, {"items", r.items.size()}};
    if (!o.json)
      std::printf("%zu items: acc %.4f  acc_norm %.4f\n", r.items.size(), r.acc, r.acc_norm);
  } else {
    TokenStream stream;
    if (!o.text.empty()) stream.ids = tok->encode(read_text(o.text), tok->bos_id() >= 0);
    else stream = read_shards(shards_to_score(o.data, o.quiet), m.cfg.vocab_size);
    PerplexityOptions po;
    po.ctx = o.ctx > 0 ? o.ctx : std::min(512, m.cfg.max_seq_len);
    po.stride = o.stride;
    po.max_chunks = o.chunks;
    po.rows = o.rows;
    po.bos = tok ? tok->bos_id() : -1;
    const PerplexityReport r = perplexity(*be, m, stream, tok.get(), po, progress_printer("chunks", o.quiet));
    j = perplexity_json(r);
    j["ctx"] = po.ctx;
    j["stride"] = po.stride;
    if (!o.json) {
      std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.perplexity, r.perplexity_err);
      if (r.bits_per_byte >= 0) std::printf("bits per byte: %.5f\n", r.bits_per_byte);
      std::printf("%lld tokens scored in %lld chunks of %d (%lld in the input)\n", (long long)r.tokens,
                  (long long)r.chunks, po.ctx, (long long)r.stream_tokens);
    }
  }
  j["backend"] = be->name();
  j["precision"] = o.precision;
  if (o.json) std::printf("%s\n", j.dump().c_str());
  return 0;
}
}  // namespace

void add_eval_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("eval", "Perplexity (llama.cpp's protocol) and bits per byte, or multiple-choice accuracy");
  const auto o = std::make_shared<EvalOptions>();
  cmd->add_option("model", o->model, "Any model anetrain reads, or a training run directory")->required();
  cmd->add_option("-z,--tokenizer", o->tok_path, "tokenizer.json / tokenizer.bin (default: found next to MODEL)");
  cmd->add_option("--text", o->text, "Perplexity of this UTF-8 text file");
  cmd->add_option("--data", o->data, "Perplexity of these token shards (their .mask files honoured), in order; a folder `prepare` wrote: its val shards (its train shards if it has none)");
  cmd->add_option("--choices", o->choices, "Multiple choice: a HellaSwag-style JSONL file");
  cmd->add_option("--scores", o->scores, "With --choices: write each item's log-likelihoods and picks here (JSONL)");
  cmd->add_option("-c,--ctx", o->ctx, "Tokens per chunk (default: 512 or the model's max_seq_len if less)")
      ->check(within(Range::between(2, 1 << 20).whole()));
  cmd->add_option("--stride", o->stride, "Sliding window: windows start every S tokens, each scores its last S")
      ->check(within(Range::between(1, 1 << 20).whole()));
  cmd->add_option("--chunks", o->chunks, "Evaluate only the first N chunks (windows)")
      ->check(within(Range::between(1, 1e15).whole()));
  cmd->add_option("--batch", o->rows, "Chunks (or endings) per forward (default: as many as fit 1 GiB of activations)")
      ->check(within(Range::between(1, 4096).whole()));
  cmd->add_option("--backend", o->backend, "Kernel backend")->capture_default_str();
  cmd->add_option("--precision", o->precision, "Matrix products in fp32 or bf16")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0 = all cores)")->check(thread_count());
  cmd->add_flag("--json", o->json, "Print one JSON object with the results");
  cmd->add_flag("-q,--quiet", o->quiet, "No progress on stderr");
  cmd->add_flag("--ane-strict", o->ane_strict,
                "A program the Neural Engine rejects is an error (default: its stage runs on the CPU, with a warning)");
  cmd->callback([&run, o] { run = [o] { return run_eval(*o); }; });
}

}  // namespace anetrain
