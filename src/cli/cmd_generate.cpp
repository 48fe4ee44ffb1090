// `anetrain generate MODEL [-z TOKENIZER] -i PROMPT -n STEPS -t TEMP -p TOP_P -k TOP_K -s SEED`
// (llama2.c's flag letters, llama.cpp's --top-k) with --chat [--template] [--system] [--no-think]: the
// prompt as prepare --chat renders what comes before a reply (ChatML, Llama-2 or plain).
// stdout is exactly the prompt, then the generated text streamed token by token, then "\n";
// timing goes to stderr.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>

#include <omp.h>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "contract/registry.h"
#include "core/error.h"
#include "data/chat.h"
#include "formats/gguf.h"
#include "formats/load.h"
#include "formats/peft.h"
#include "gen/chat.h"
#include "gen/decoder.h"
#include "gen/sampler.h"
#include "gen/weight_form.h"
#include "model/lora.h"
#include "tokenizer/tokenizer.h"

namespace anetrain {


namespace {
// --ids: "1 403 407" in, the prompt ids then every generated id out (no EOS handling: the
// caller chose the step count). Used to compare greedy decoding with the PyTorch reference.
int generate_ids_impl(Backend& be, const ModelConfig& cfg, const std::function<std::unique_ptr<Decoder>(int)>& decoder,
                      const std::string& prompt, int steps, const SamplingParams& sp, uint64_t seed) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos < prompt.size()) {
    while (pos < prompt.size() && prompt[pos] == ' ') ++pos;
    if (pos == prompt.size()) break;
    size_t end = prompt.find(' ', pos);
    const std::string word = prompt.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    try {
      ids.push_back(std::stoi(word));
    } catch (const std::exception&) {
      fail("generate --ids: '" + word + "' is not a token id");
    }
    pos = end == std::string::npos ? prompt.size() : end;
  }
  if (ids.empty()) fail("generate --ids: give the prompt as token ids with -i \"1 2 3\"");
  const size_t prompt_tokens = ids.size();
  auto dec = decoder(std::min(cfg.max_seq_len, int(prompt_tokens) + steps));
  const auto p0 = std::chrono::steady_clock::now();
  const float* logits = dec->feed(ids.data(), int(ids.size()));
  const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - p0).count();
  Rng rng(seed);
  std::vector<float> scratch;
  const auto t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) {
    ids.push_back(sample_token(logits, cfg.vocab_size, sp, rng, scratch));
    if (s + 1 < steps) logits = dec->feed(ids.back());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "prefill %zu tokens: %.1f tok/s; decode %d tokens: %.1f tok/s (%s backend)\n", prompt_tokens,
               double(prompt_tokens) / std::max(prefill_s, 1e-9), steps, steps / std::max(secs, 1e-9), be.name().c_str());
  for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
  std::printf("\n");
  return 0;
}
}  // namespace

void add_generate_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("generate", "Generate text with a KV cache");
  struct Options {
    std::string model, tok_path, prompt, system, lora, backend = "cpu", dtype = "auto", chat_template = "auto";
    int steps = 256, top_k = 0, threads = 0;
    float temperature = 1.0f, top_p = 0.9f;
    uint64_t seed = 0;
    bool chat = false, no_think = false, seed_given = false, ids_mode = false, ane_strict = false;
  };
  const auto o = std::make_shared<Options>();
  cmd->add_option("model", o->model, "Any model anetrain reads, or a training run directory")->required();
  cmd->add_option("-z,--tokenizer", o->tok_path, "tokenizer.json / tokenizer.bin (default: found next to MODEL)");
  cmd->add_option("--lora", o->lora,
                  "A PEFT adapter folder (or an adapter run's checkpoint) applied over MODEL; nothing is written");
  cmd->add_option("-i,--prompt", o->prompt, "Prompt text");
  cmd->add_option("-n,--steps", o->steps, "Tokens to generate (0 = up to the context)")->capture_default_str()->check(within(Range::between(0, 1 << 24).whole()));
  cmd->add_option("-t,--temperature", o->temperature, "0 = greedy")->capture_default_str()->check(within(Range::at_least(0)));
  cmd->add_option("-p,--top-p", o->top_p, "Nucleus sampling threshold (1 = off)")->capture_default_str()->check(within(Range{0, 1, true, false}));
  cmd->add_option("-k,--top-k", o->top_k, "Keep only the k most likely tokens (0 = off)")->capture_default_str()->check(within(Range::between(0, 1 << 24).whole()));
  cmd->add_option("-s,--seed", o->seed, "Sampling seed (default: time)");
  cmd->add_flag("--ane-strict", o->ane_strict,
                "A program the Neural Engine rejects is an error (default: its stage runs on the CPU, with a warning)");
  cmd->add_flag("--chat", o->chat, "Wrap the prompt in the model's chat template, as prepare --chat renders replies");
  cmd->add_option("--template", o->chat_template, "--chat's template: auto (as prepare --chat picks it), chatml, llama2, plain")
      ->check(CLI::IsMember({"auto", "chatml", "llama2", "plain"}))
      ->capture_default_str();
  cmd->add_flag("--no-think", o->no_think,
                "ChatML: open the reply with Qwen3's empty reasoning block (enable_thinking=False), as prepare --chat "
                "trains replies; without it Qwen3 may reason first");
  cmd->add_option("--system", o->system, "System message for --chat");
  cmd->add_flag("--ids", o->ids_mode, "Prompt and output are token ids (no tokenizer): a debugging window");
  cmd->add_option("--backend", o->backend, "Kernel backend")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0 = all cores)")->check(thread_count());
  cmd->add_option("--dtype", o->dtype,
                  "Weights in memory: auto (as stored: q8_0 for llama2.c v2 / Q8_0 GGUF, bf16 for BF16 GGUF, "
                  "else f32), f32, bf16, q8_0 (int8 weights and activations)")
      ->check(CLI::IsMember({"auto", "f32", "bf16", "q8_0"}))
      ->capture_default_str();
  cmd->callback([cmd, &run, o] {
    o->seed_given = cmd->count("--seed") > 0;
    run = [o] {
      if (o->threads > 0) omp_set_num_threads(o->threads);
      if (!(o->top_p > 0.0f && o->top_p <= 1.0f)) fail("generate: --top-p must be in (0, 1]");
      if (o->temperature < 0.0f) fail("generate: --temperature must be ≥ 0");
      auto be = make_backend(o->backend);
      if (CompiledPrograms* programs = be->caps().programs) programs->allow_program_fallback(!o->ane_strict);
      // The weights packed in the format asked for, or fp32 for a backend that decodes through
      // its fused stages.
      const bool stages = !decodes_packed(*be);
      std::optional<WeightFormat> want;
      if (o->dtype != "auto") want = parse_weight_format(o->dtype);
      if (stages && want && *want != WeightFormat::f32)
        fail("generate --dtype " + o->dtype + ": the " + be->name() + " backend decodes fp32 weights only");
      std::unique_ptr<PackedModel> pm;
      LoadedModel lm;
      if (stages || !o->lora.empty()) {
        lm = load_model(o->model);
        // Adapters folded into the weights in memory (model/lora.h): the decoder's products are
        // then the adapted model's.
        if (!o->lora.empty()) load_peft_adapter(*lm.model, adapter_folder(o->lora));
        merge_adapters(*lm.model);
        if (!stages) pm = pack_model(std::move(lm.model), want.value_or(WeightFormat::f32));
      } else {
        pm = load_packed_model(o->model, want);
      }
      const ModelConfig& cfg = pm ? pm->cfg : lm.model->cfg;
      auto make_decoder = [&](int ctx) {
        return pm ? std::make_unique<Decoder>(*be, *pm, ctx) : std::make_unique<Decoder>(*be, *lm.model, ctx);
      };
      if (o->ids_mode)
        return generate_ids_impl(*be, cfg, make_decoder, o->prompt, o->steps, SamplingParams{o->temperature, o->top_p, o->top_k}, o->seed);
      const std::string tok_file = find_tokenizer(o->model, o->tok_path);
      auto tok = load_tokenizer(tok_file, cfg.vocab_size);
      if (tok->vocab_size() > cfg.vocab_size)
        fail("tokenizer has " + std::to_string(tok->vocab_size()) + " ids but the model only " +
             std::to_string(cfg.vocab_size));
      std::vector<int32_t> ids;
      if (!o->chat && (o->no_think || o->chat_template != "auto" || !o->system.empty()))
        fail("generate: --template, --no-think and --system go with --chat");
      if (o->chat) {
        std::string why = "--template " + o->chat_template;
        const ChatTemplate t = o->chat_template == "auto" ? detect_chat_template(tok_file, *tok, why)
                                                          : parse_chat_template(o->chat_template);
        if (o->no_think && t != ChatTemplate::chatml)
          fail(std::string("generate: --no-think is ChatML's (Qwen3's); the template is ") + chat_template_name(t));
        std::fprintf(stderr, "chat template %s (%s)\n", chat_template_name(t), why.c_str());
        Conversation c;
        if (!o->system.empty()) c.messages.push_back({ChatRole::system, o->system});
        c.messages.push_back({ChatRole::user, o->prompt});
        check_renderable(c, t, *tok);
        // Qwen3's own default leaves the reply open, so the model may reason first; every other
        // prompt is exactly what prepare --chat put before the replies it trained.
        ids = t == ChatTemplate::chatml && !o->no_think ? tok->encode(chatml_prompt(o->system, o->prompt), false, false)
                                                        : render_reply_prompt(c, t, *tok);
      } else {
        ids = tok->encode(o->prompt, tok->bos_id() >= 0, false);
      }
      if (ids.empty()) fail("generate: the prompt encodes to no tokens and the tokenizer has no BOS; give -i TEXT");
      const int ctx = cfg.max_seq_len;
      if (int(ids.size()) >= ctx) fail("generate: the prompt has " + std::to_string(ids.size()) +
                                       " tokens; the model's context is " + std::to_string(ctx));
      const int budget = o->steps > 0 ? std::min(o->steps, ctx - int(ids.size())) : ctx - int(ids.size());
      auto dec = make_decoder(int(ids.size()) + budget);
      std::fwrite(o->prompt.data(), 1, o->prompt.size(), stdout);
      std::fflush(stdout);
      using Clock = std::chrono::steady_clock;
      auto t0 = Clock::now();
      const float* logits = dec->feed(ids.data(), int(ids.size()));
      const double prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
      Rng rng(o->seed_given ? o->seed : uint64_t(std::chrono::system_clock::now().time_since_epoch().count()));
      SamplingParams sp{o->temperature, o->top_p, o->top_k};
      std::vector<float> scratch;
      int32_t prev = ids.back();
      int made = 0;
      t0 = Clock::now();
      for (; made < budget; ++made) {
        const int32_t next = sample_token(logits, cfg.vocab_size, sp, rng, scratch);
        if (next == tok->eos_id() || (next == tok->bos_id() && made > 0)) break;
        const std::string piece = tok->decode_step(prev, next);
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        prev = next;
        if (made + 1 < budget) logits = dec->feed(next);
      }
      std::fputc('\n', stdout);
      const double decode_s = std::chrono::duration<double>(Clock::now() - t0).count();
      // One line that `bench generate` parses: keep its shape.
      const double tps = made / std::max(decode_s, 1e-9);
      const double mb = pm ? double(pm->weight_bytes()) / 1e6 : 4e-6 * double(lm.model->params.size());
      std::fprintf(stderr, "prefill %zu tokens: %.1f tok/s; decode %d tokens: %.1f tok/s (%s backend, %s weights, "
                   "%.0f MB/token, %.1f GB/s)\n", ids.size(), double(ids.size()) / prefill_s, made, tps,
                   be->name().c_str(), pm ? weight_format_name(pm->format).c_str() : "f32", mb, tps * mb / 1e3);
      return 0;
    };
  });
}

}  // namespace anetrain
