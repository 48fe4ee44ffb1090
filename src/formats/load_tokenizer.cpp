// load_tokenizer(): picks the reader by content, not by file name, so a renamed tokenizer still
// loads. JSON (first non-blank byte '{') is a Hugging Face tokenizer.json; a file starting with
// "GGUF" is a model that carries its vocabulary; anything else is taken to be a llama2.c
// tokenizer.bin, whose first four bytes are a small little-endian int32. copy_tokenizer_files()
// names a copy by the same test.
#include "formats/load.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/gguf_vocab.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/sp_bpe.h"

namespace anetrain {

namespace {

bool looks_like_json(const MappedFile& f) {
  // A max_token_length of 123 also starts with '{', but its int32 has NUL bytes; JSON never does.
  if (std::memchr(f.data(), 0, std::min<size_t>(f.size(), 4)) != nullptr) return false;
  for (size_t i = 0; i < f.size(); ++i) {
    const uint8_t c = f.data()[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{';
  }
  return false;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, int vocab_size_hint) {
  bool json, gguf;
  {
    const MappedFile f(path);  // closed again before the chosen reader opens the file
    if (f.size() == 0) fail(path + ": empty file is not a tokenizer");
    json = looks_like_json(f);
    gguf = f.size() >= 4 && std::memcmp(f.data(), "GGUF", 4) == 0;  // a model file with its vocabulary
  }
  if (json) return load_hf_tokenizer(path);
  if (gguf) return load_gguf_tokenizer(path, vocab_size_hint);
  return load_llama2c_tokenizer(path, vocab_size_hint);
}

std::vector<std::string> copy_tokenizer_files(const std::string& tokenizer, const std::string& out_dir) {
  namespace fs = std::filesystem;
  auto read_whole = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!f.good() && !f.eof()) fail(p.string() + ": cannot read");
    return bytes;
  };
  bool json;
  {
    const MappedFile f(tokenizer);
    if (f.size() == 0) fail(tokenizer + ": empty file is not a tokenizer");
    json = looks_like_json(f);
  }
  std::vector<std::string> names;
  const fs::path config = fs::path(tokenizer).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (json && fs::is_regular_file(config, ec)) {
    const std::string bytes = read_whole(config);
    write_file_atomic((fs::path(out_dir) / "tokenizer_config.json").string(), bytes.data(), bytes.size());
    names.push_back("tokenizer_config.json");
  }
  const std::string name = json ? "tokenizer.json" : "tokenizer.bin";
  const std::string bytes = read_whole(tokenizer);
  write_file_atomic((fs::path(out_dir) / name).string(), bytes.data(), bytes.size());
  names.push_back(name);
  return names;
}

}  // namespace anetrain
