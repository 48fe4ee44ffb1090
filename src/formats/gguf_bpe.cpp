// A GGUF's byte-level BPE vocabulary ("gpt2": Qwen2/3, Llama 3, GPT-2) as the tokenizer.json it
// came from. llama.cpp's converter keeps the vocabulary's pieces as they are (in GPT-2's byte
// alphabet), the merges as "left right" by rank, and the added tokens as CONTROL (special) or
// USER_DEFINED entries of the one token list; the pre-tokenizer is a name (tokenizer.ggml.pre)
// standing for the regex and normalizer of the model family's tokenizer.json.
#include <optional>

#include "core/error.h"
#include "formats/gguf_vocab.h"
#include "tokenizer/hf_tokenizer.h"

namespace anetrain {

namespace {

constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5;

struct PreTokenizer {
  hf::SplitRegex split;
  bool nfc;            // Qwen's tokenizer.json normalizes to NFC before splitting
  bool ignore_merges;  // Llama 3's: a word that is a whole piece is that piece
  bool adds_bos;       // without tokenizer.ggml.add_bos_token, as llama.cpp decides: Llama 3's alone
};

std::optional<PreTokenizer> known_pre_tokenizer(const std::string& pre) {
  if (pre == "qwen2") return PreTokenizer{hf::SplitRegex::kQwen, true, false, false};
  if (pre == "llama-bpe" || pre == "llama3") return PreTokenizer{hf::SplitRegex::kLlama3, false, true, true};
  if (pre.empty() || pre == "default" || pre == "gpt-2") return PreTokenizer{hf::SplitRegex::kGpt2, false, false, false};
  return std::nullopt;
}

PreTokenizer pre_tokenizer(const std::string& pre, const std::string& path) {
  if (auto known = known_pre_tokenizer(pre)) return *known;
  fail(path + ": its byte-level tokenizer splits text as \"" + pre +
       "\" (tokenizer.ggml.pre); anetrain splits as qwen2, llama-bpe and gpt-2 do. Pass the model's "
       "tokenizer.json with -z");
}

// add_bos_token, when the file says: Qwen's GGUFs name a BOS id (<|endoftext|>) and say it is not added.
std::optional<bool> add_bos(const GgufTokenizer& t) {
  for (const GgufKV& kv : t.other)
    if (kv.key == "tokenizer.ggml.add_bos_token" && kv.value.type == GgufType::boolean) return kv.value.i != 0;
  return std::nullopt;
}

}  // namespace

bool byte_level_split_known(const std::string& pre) { return known_pre_tokenizer(pre).has_value(); }

std::unique_ptr<Tokenizer> gguf_byte_level_tokenizer(const GgufTokenizer& t, const std::string& path) {
  const PreTokenizer pre = pre_tokenizer(t.pre, path);  // gguf_tokenizer() checked one type per token
  hf::Spec spec;
  spec.path = path;
  spec.byte_level = true;
  if (pre.nfc) spec.normalizer.push_back({hf::NormalizeStep::kNfc, "", ""});
  spec.splits.push_back(pre.split);
  spec.decoder.push_back({hf::DecodeStep::kByteLevel, "", "", 0, 0});
  auto bpe = std::make_unique<hf::BpeModel>();
  bpe->byte_level = true;
  bpe->ignore_merges = pre.ignore_merges;
  bpe->pieces.resize(t.tokens.size());
  for (size_t id = 0; id < t.tokens.size(); ++id) {
    const int32_t type = t.token_type.empty() ? kNormal : t.token_type[id];
    const std::string& piece = t.tokens[id];
    if (type == kUnused) continue;  // padding rows ("[PAD151669]"): never produced, never matched
    bpe->pieces[id] = piece;
    if (type == kControl || type == kUserDefined) {
      if (piece.empty()) fail(path + ": token " + std::to_string(id) + " is an empty added token");
      hf::AddedToken a;
      a.content = piece;
      a.id = int32_t(id);
      a.special = type == kControl;
      spec.added.push_back(std::move(a));
    } else if (!bpe->ids.emplace(piece, int32_t(id)).second) {
      fail(path + ": token " + std::to_string(id) + " repeats the piece of token " +
           std::to_string(bpe->ids.at(piece)));
    }
  }
  bpe->merges.reserve(t.merges.size());
  std::string joined;
  for (size_t rank = 0; rank < t.merges.size(); ++rank) {
    const std::string& m = t.merges[rank];
    // Byte-level pieces never hold a space (GPT-2's alphabet maps it to "Ġ"): one space separates.
    const size_t sp = m.find(' ');
    auto id_of = [&](std::string_view piece) {
      const auto it = bpe->ids.find(piece);
      if (it == bpe->ids.end())
        fail(path + ": tokenizer.ggml.merges[" + std::to_string(rank) + "] \"" + m + "\": \"" + std::string(piece) +
             "\" is not a token");
      return it->second;
    };
    if (sp == std::string::npos || m.find(' ', sp + 1) != std::string::npos)
      fail(path + ": tokenizer.ggml.merges[" + std::to_string(rank) + "] \"" + m + "\" is not two pieces and a space");
    const std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
    joined.assign(left).append(right);
    bpe->merges.push_back({id_of(left), id_of(right), id_of(joined)});
  }
  bpe->index();
  spec.bpe = std::move(bpe);
  const std::optional<bool> bos = add_bos(t);
  spec.bos_id = bos.value_or(pre.adds_bos) && t.bos_id >= 0 && size_t(t.bos_id) < t.tokens.size() ? int32_t(t.bos_id) : -1;
  spec.eos_id = t.eos_id >= 0 && size_t(t.eos_id) < t.tokens.size() ? int32_t(t.eos_id) : -1;
  return hf::make_hf_tokenizer(std::move(spec));
}

}  // namespace anetrain
