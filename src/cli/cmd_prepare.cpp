// `anetrain prepare` (documents → shards; with --chat, conversations → shards and loss masks) and
// `anetrain tokenizer train` (corpus → BPE).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "data/chat.h"
#include "data/prepare.h"
#include "formats/load.h"
#include "tokenizer/bpe_trainer.h"

namespace anetrain {

void add_prepare_command(CLI::App& app, Command& run) {
  struct Options {
    std::vector<std::string> inputs;
    std::string tokenizer, chat_template = "auto";
    bool chat = false, train_on_prompt = false, skip_bad = false;
    PrepareOptions opt;
  };
  const auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("prepare", "Tokenize text / JSONL / TinyStories JSON into training shards");
  cmd->add_option("inputs", o->inputs, "Input files (.txt, .jsonl, .json)")->required();
  cmd->add_option("-z,--tokenizer", o->tokenizer, "tokenizer.json or llama2.c tokenizer.bin")->required();
  cmd->add_option("-o,--out", o->opt.out_dir, "Output directory for train_*.bin / val_*.bin")->required();
  cmd->add_option("--format", o->opt.format, "Shard format")->check(CLI::IsMember({"anetrain", "llama2c"}))->capture_default_str();
  cmd->add_option("--val-frac", o->opt.val_frac, "Fraction of documents held out for validation")->capture_default_str()
      ->check(CLI::Range(0.0, 0.5));
  cmd->add_flag("--doc-per-line", o->opt.doc_per_line, "Plain text: one document per line (default: per paragraph)");
  cmd->add_option("--threads", o->opt.threads, "Tokenizer threads (0 = all cores)")->check(thread_count());
  cmd->add_flag("--chat", o->chat,
                "Inputs are JSONL conversations (OpenAI \"messages\" or ShareGPT \"conversations\"); writes a loss "
                "mask beside each shard so only the assistant's replies train");
  cmd->add_option("--template", o->chat_template, "Chat template (--chat): auto reads tokenizer_config.json next to the tokenizer")
      ->check(CLI::IsMember({"auto", "chatml", "llama2", "plain"}))->capture_default_str();
  cmd->add_flag("--train-on-prompt", o->train_on_prompt, "With --chat: every token counts toward the loss, not only the replies");
  cmd->add_flag("--skip-bad", o->skip_bad, "With --chat: skip malformed conversations (counted and listed) instead of stopping");
  cmd->callback([&run, o] {
    run = [o] {
      if (!o->chat && (o->train_on_prompt || o->skip_bad || o->chat_template != "auto"))
        fail("prepare: --template, --train-on-prompt and --skip-bad go with --chat");
      auto tok = load_tokenizer(o->tokenizer);
      const auto t0 = std::chrono::steady_clock::now();
      PrepareSummary s;
      nlohmann::ordered_json chat_summary;
      if (o->chat) {
        ChatPrepareOptions chat;
        chat.train_on_prompt = o->train_on_prompt;
        chat.skip_bad = o->skip_bad;
        std::string why = "--template " + o->chat_template;
        chat.chat_template = o->chat_template == "auto" ? detect_chat_template(o->tokenizer, *tok, why)
                                                        : parse_chat_template(o->chat_template);
        std::fprintf(stderr, "chat template %s (%s)\n", chat_template_name(chat.chat_template), why.c_str());
        const ChatPrepareSummary cs = prepare_chat(o->inputs, *tok, o->opt, chat);
        s = cs.shards;
        for (const std::string& note : cs.skip_notes) std::fprintf(stderr, "skipped %s\n", note.c_str());
        chat_summary = {{"template", chat_template_name(chat.chat_template)}, {"template_reason", why},
                        {"train_on_prompt", chat.train_on_prompt}, {"conversations", s.documents},
                        {"skipped", cs.skipped}, {"skipped_lines", cs.skip_notes},
                        {"counted_tokens", cs.counted_tokens}, {"loss_masks", "beside each shard, NAME.mask"}};
      } else {
        s = prepare(o->inputs, *tok, o->opt);
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      nlohmann::ordered_json summary = {{"documents", s.documents},       {"bytes", s.bytes},
                                        {"train_tokens", s.train_tokens}, {"val_tokens", s.val_tokens},
                                        {"bytes_per_token", s.bytes_per_token()},
                                        {"train_shards", s.train_shards}, {"val_shards", s.val_shards},
                                        {"tokenizer", o->tokenizer},         {"vocab_size", tok->vocab_size()},
                                        {"tokenizer_fingerprint", tok->fingerprint()}, {"format", o->opt.format}};
      if (o->chat) summary["chat"] = chat_summary;
      const std::string text = summary.dump(2) + "\n";
      write_file_atomic((std::filesystem::path(o->opt.out_dir) / "prepare.json").string(), text.data(), text.size());
      std::printf("%llu documents, %llu train + %llu val tokens, %.2f bytes/token, %.1f MB/s → %s\n",
                  (unsigned long long)s.documents, (unsigned long long)s.train_tokens,
                  (unsigned long long)s.val_tokens, s.bytes_per_token(), double(s.bytes) / 1e6 / secs,
                  o->opt.out_dir.c_str());
      if (o->chat)
        std::printf("%s of %llu tokens count toward the loss%s\n",
                    std::to_string(chat_summary["counted_tokens"].get<uint64_t>()).c_str(),
                    (unsigned long long)(s.train_tokens + s.val_tokens),
                    chat_summary["skipped"].get<uint64_t>()
                        ? (", " + std::to_string(chat_summary["skipped"].get<uint64_t>()) + " bad line(s) skipped").c_str()
                        : "");
      // The folder stands for its shards (train and eval take it as --data).
      std::fprintf(stderr, "next: anetrain train --model MODEL%s --data %s --out RUN\n", o->chat ? " --lora 16" : "",
                   o->opt.out_dir.c_str());
      return 0;
    };
  });
}

void add_tokenizer_train_command(CLI::App& app, Command& run) {
  struct Options {
    BpeTrainOptions opt;
    std::vector<std::string> corpus;
    std::string out;
  };
  const auto o = std::make_shared<Options>();
  CLI::App* tok = nullptr;
  try {
    tok = app.get_subcommand("tokenizer");
  } catch (const CLI::OptionNotFound&) {
    tok = app.add_subcommand("tokenizer", "Tokenizer tools");
  }
  auto* cmd = tok->add_subcommand("train", "Train a byte-fallback BPE tokenizer on a corpus");
  cmd->add_option("corpus", o->corpus, "UTF-8 text files")->required();
  cmd->add_option("--vocab", o->opt.vocab_size, "Vocabulary size (259+1 to 65536)")->capture_default_str();
  cmd->add_option("-o,--out", o->out, "Output tokenizer.json (a tokenizer.bin is written next to it)")->required();
  cmd->add_option("--coverage", o->opt.character_coverage, "Share of characters given their own piece")->capture_default_str()->check(within(Range{0, 1, true, false}));
  cmd->callback([&run, o] {
    run = [o] {
      BpeVocab v = train_bpe(o->corpus, o->opt);
      write_bpe_tokenizer_json(v, o->out);
      std::filesystem::path bin = std::filesystem::path(o->out).replace_extension(".bin");
      write_bpe_tokenizer_bin(v, bin.string());
      std::printf("vocabulary %zu → %s and %s\n", v.pieces.size(), o->out.c_str(), bin.c_str());
      return 0;
    };
  });
}

}  // namespace anetrain
