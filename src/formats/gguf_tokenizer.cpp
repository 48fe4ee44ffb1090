// The tokenizer inside a GGUF: its tokenizer.* metadata read into a GgufTokenizer. Converting
// it to and from the tokenizer files anetrain reads is gguf_vocab.cpp's.
#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/gguf.h"

namespace anetrain {

GgufTokenizer gguf_tokenizer(const GgufReader& r) {
  GgufTokenizer t;
  if (!r.find("tokenizer.ggml.tokens")) return t;
  for (const GgufKV& kv : r.metadata()) {
    if (kv.key.compare(0, 10, "tokenizer.") != 0) continue;
    const GgufValue& v = kv.value;
    auto want = [&](bool ok, const char* what) {
      if (!ok) fail_at(r.path(), kv.offset, "metadata '" + kv.key + "' must be " + what);
    };
    const bool int_array = v.type == GgufType::array && v.elem != GgufType::string && v.elem != GgufType::array &&
                           v.elem != GgufType::f32 && v.elem != GgufType::f64;
    if (kv.key == "tokenizer.ggml.model") {
      want(v.type == GgufType::string, "a string");
      t.model = v.s;
    } else if (kv.key == "tokenizer.ggml.pre") {
      want(v.type == GgufType::string, "a string");
      t.pre = v.s;
    } else if (kv.key == "tokenizer.ggml.tokens") {
      want(v.type == GgufType::array && v.elem == GgufType::string, "an array of strings");
      t.tokens = v.strs;
    } else if (kv.key == "tokenizer.ggml.scores") {
      want(v.type == GgufType::array && v.elem == GgufType::f32, "an array of f32");
      t.scores.assign(v.floats.begin(), v.floats.end());
    } else if (kv.key == "tokenizer.ggml.token_type") {
      want(int_array, "an array of integers");
      t.token_type.assign(v.ints.begin(), v.ints.end());
    } else if (kv.key == "tokenizer.ggml.merges") {
      want(v.type == GgufType::array && v.elem == GgufType::string, "an array of strings");
      t.merges = v.strs;
    } else if (kv.key == "tokenizer.ggml.bos_token_id") {
      t.bos_id = r.get_int(kv.key, 0, INT32_MAX);
    } else if (kv.key == "tokenizer.ggml.eos_token_id") {
      t.eos_id = r.get_int(kv.key, 0, INT32_MAX);
    } else if (kv.key == "tokenizer.ggml.unknown_token_id") {
      t.unk_id = r.get_int(kv.key, 0, INT32_MAX);
    } else if (kv.key == "tokenizer.ggml.padding_token_id") {
      t.pad_id = r.get_int(kv.key, 0, INT32_MAX);
    } else {
      t.other.push_back(kv);
    }
  }
  const GgufKV* toks = r.find("tokenizer.ggml.tokens");
  if (!t.scores.empty() && t.scores.size() != t.tokens.size())
    fail_at(r.path(), toks->offset, std::to_string(t.tokens.size()) + " tokens but " + std::to_string(t.scores.size()) + " scores");
  if (!t.token_type.empty() && t.token_type.size() != t.tokens.size())
    fail_at(r.path(), toks->offset, std::to_string(t.tokens.size()) + " tokens but " +
                                        std::to_string(t.token_type.size()) + " token types");
  return t;
}

GgufTokenizer gguf_file_tokenizer(const std::string& path) {
  {
    MappedFile f(path);
    if (f.size() < 4 || std::memcmp(f.data(), "GGUF", 4) != 0) return {};
  }
  return gguf_tokenizer(GgufReader(path));
}

std::string gguf_tokenizer_kind(const std::string& path) {
  const GgufTokenizer t = gguf_file_tokenizer(path);
  return t.empty() ? "" : t.model;
}

}  // namespace anetrain
