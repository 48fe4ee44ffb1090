// A GGUF's vocabulary and the tokenizer files anetrain reads, converted both ways: llama2.c
// tokenizer.bin (SentencePiece vocab with scores, "▁" stored as ' ', BOS/EOS as "\n<s>\n" and
// "\n</s>\n") and byte-level tokenizer.json (GPT-2/Qwen style, with merges).
#include "formats/gguf_vocab.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/error.h"
#include "core/json_file.h"
#include "core/mapped_file.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/sp_bpe.h"

namespace anetrain {

namespace {
const std::string kSpace = "\xE2\x96\x81";  // U+2581, sentencepiece's visible space

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

bool is_byte_piece(const std::string& p) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return p.size() == 6 && p.compare(0, 3, "<0x") == 0 && hex(p[3]) && hex(p[4]) && p[5] == '>';
}
}  // namespace

GgufTokenizer gguf_tokenizer_from_file(const std::string& path, int vocab_size) {
  bool json;
  {
    const MappedFile f(path);
    // tokenizer.bin opens with a small int32, so it has a NUL among its first four bytes; JSON never does.
    json = f.size() >= 4 && f.data()[0] == '{' && std::memchr(f.data(), 0, 4) == nullptr;
  }
  GgufTokenizer t;
  if (!json) {
    // llama2.c hard-codes the roles: 0 <unk>, 1 BOS, 2 EOS; "<0xNN>" pieces are byte fallbacks.
    const auto tok = load_llama2c_tokenizer(path, 0);
    const auto* sp = dynamic_cast<const Llama2cTokenizer*>(tok.get());
    if (!sp) fail(path + ": internal: not a llama2.c tokenizer");
    t.model = "llama";
    t.bos_id = 1, t.eos_id = 2, t.unk_id = 0;
    for (int32_t id = 0; id < sp->vocab_size(); ++id) {
      std::string p = sp->piece(id);
      if (id == 1 && p == "\n<s>\n") p = "<s>";
      else if (id == 2 && p == "\n</s>\n") p = "</s>";
      else p = replace_all(p, " ", kSpace);
      t.token_type.push_back(id == 0 ? 2 : id <= 2 ? 3 : is_byte_piece(p) ? 6 : 1);
      t.tokens.push_back(std::move(p));
      t.scores.push_back(sp->score(id));
    }
  } else {
    hf::Spec spec = hf::parse_tokenizer_json(path);
    if (!spec.byte_level)
      fail(path + ": only byte-level (GPT-2/Qwen style) tokenizer.json files convert to GGUF here; for a "
                  "SentencePiece vocabulary pass its llama2.c tokenizer.bin");
    t.model = "gpt2";
    if (!spec.splits.empty())
      t.pre = spec.splits[0] == hf::SplitRegex::kQwen ? "qwen2" : spec.splits[0] == hf::SplitRegex::kLlama3 ? "llama-bpe" : "gpt-2";
    const auto& pieces = spec.bpe->pieces;
    for (size_t id = 0; id < pieces.size(); ++id) {
      t.tokens.push_back(pieces[id].empty() ? "[PAD" + std::to_string(id) + "]" : pieces[id]);
      t.token_type.push_back(pieces[id].empty() ? 5 : 1);
    }
    for (const auto& a : spec.added) t.token_type[size_t(a.id)] = a.special ? 3 : 4;
    for (const auto& m : spec.bpe->merges) t.merges.push_back(pieces[size_t(m.left)] + " " + pieces[size_t(m.right)]);
    t.bos_id = spec.bos_id, t.eos_id = spec.eos_id;
    // Said outright, as llama.cpp's converter says it: without the key llama.cpp decides by the
    // pre-tokenizer (BOS for Llama 3's, none for Qwen's), not by the tokenizer.json.
    t.other.push_back({"tokenizer.ggml.add_bos_token", GgufValue::of_bool(spec.bos_id >= 0), 0});
    // The chat template rides along, as llama.cpp's converter carries it, for chat front ends.
    const std::string config = (std::filesystem::path(path).parent_path() / "tokenizer_config.json").string();
    if (std::ifstream in(config, std::ios::binary); in) {
      const nlohmann::json j = parse_json_file(in, config, "tokenizer_config.json");
      if (j.is_object() && j.contains("chat_template") && j["chat_template"].is_string())
        t.other.push_back({"tokenizer.chat_template", GgufValue::of_str(j["chat_template"].get<std::string>()), 0});
    }
  }
  if (vocab_size > 0 && t.tokens.size() > size_t(vocab_size))
    fail(path + ": tokenizer has " + std::to_string(t.tokens.size()) + " tokens but the model only " +
         std::to_string(vocab_size) + " embedding rows");
  return t;
}

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::string& path, int vocab_size) {
  GgufTokenizer t = gguf_tokenizer(GgufReader(path));
  if (t.empty()) fail_at(path, 0, "this GGUF file carries no tokenizer (no tokenizer.ggml.tokens)");
  if (vocab_size > 0 && int(t.tokens.size()) != vocab_size)
    fail(path + ": its tokenizer has " + std::to_string(t.tokens.size()) + " tokens but the model " +
         std::to_string(vocab_size));
  if (t.model == "gpt2") return gguf_byte_level_tokenizer(t, path);
  if (t.model != "llama" || t.scores.size() != t.tokens.size())
    fail(path + ": its tokenizer is \"" + t.model +
         "\"; anetrain reads GGUF vocabularies of the SentencePiece (\"llama\") and byte-level BPE (\"gpt2\") "
         "kinds. Pass the model's tokenizer.json or tokenizer.bin with -z");
  const int64_t bos = t.bos_id >= 0 ? t.bos_id : 1, eos = t.eos_id >= 0 ? t.eos_id : 2;
  std::vector<std::string> pieces;
  int longest = 1;
  for (size_t i = 0; i < t.tokens.size(); ++i) {
    pieces.push_back(int64_t(i) == bos ? "\n<s>\n" : int64_t(i) == eos ? "\n</s>\n" : replace_all(t.tokens[i], kSpace, " "));
    longest = std::max(longest, int(pieces.back().size()));
  }
  return std::make_unique<Llama2cTokenizer>(std::move(pieces), std::move(t.scores), longest);
}

bool gguf_tokenizer_readable(const std::string& path) {
  const GgufTokenizer t = gguf_file_tokenizer(path);  // empty for another file: neither kind below
  if (t.model == "llama") return t.scores.size() == t.tokens.size();
  return t.model == "gpt2" && byte_level_split_known(t.pre);
}

void write_gguf_tokenizer_as_llama2c(const GgufTokenizer& t, const std::string& path) {
  if (t.model != "llama" || t.scores.size() != t.tokens.size())
    fail(path + ": a llama2.c tokenizer.bin needs a SentencePiece (\"llama\") vocabulary with scores; this one is \"" +
         t.model + "\"");
  // As llama2.c's tokenizer.py export: BOS/EOS get newline-wrapped names, '▁' becomes ' '.
  const int64_t bos = t.bos_id >= 0 ? t.bos_id : 1, eos = t.eos_id >= 0 ? t.eos_id : 2;
  std::vector<std::string> pieces;
  for (size_t i = 0; i < t.tokens.size(); ++i)
    pieces.push_back(int64_t(i) == bos ? "\n<s>\n" : int64_t(i) == eos ? "\n</s>\n" : replace_all(t.tokens[i], kSpace, " "));
  write_llama2c_tokenizer(path, pieces, t.scores);
}

}  // namespace anetrain
