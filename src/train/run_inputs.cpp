#include "train/run_inputs.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/warn.h"
#include "formats/load.h"

namespace anetrain {

namespace fs = std::filesystem;

namespace {

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string read_whole(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail(p.string() + ": cannot open");
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) fail(p.string() + ": read failed");
  return bytes;
}

// The same test load_tokenizer makes: a tokenizer.json starts with '{' and holds no NUL byte
// where a llama2.c tokenizer.bin's leading int32 would.
bool json_text(const std::string& bytes) {
  if (std::memchr(bytes.data(), 0, std::min<size_t>(bytes.size(), 4)) != nullptr) return false;
  const size_t first = bytes.find_first_not_of(" \t\r\n");
  return first != std::string::npos && bytes[first] == '{';
}

struct FoundTokenizer {
  std::string path;
  std::unique_ptr<Tokenizer> tok;
};

// A tokenizer read for its fingerprint; nullptr (with a warning when `say`) when it cannot be.
std::unique_ptr<Tokenizer> try_load(const std::string& path, bool say) {
  try {
    return load_tokenizer(path);
  } catch (const Error& e) {
    if (say) warn(std::string("the run keeps no copy of its tokenizer: ") + e.what());
    return nullptr;
  }
}

// The tokenizer the first training shard was prepared with, when `anetrain prepare` left its
// prepare.json beside the shard and the file it names still has the fingerprint recorded there
// (its path may be relative to another directory, so only the fingerprint proves it is the one).
FoundTokenizer prepared_tokenizer(const nlohmann::json& settings) {
  const auto data = settings.find("data");
  if (data == settings.end() || !data->is_array() || data->empty() || !(*data)[0].is_string()) return {};
  const fs::path meta = fs::path((*data)[0].get<std::string>()).parent_path() / "prepare.json";
  std::error_code ec;
  if (!fs::is_regular_file(meta, ec)) return {};
  try {
    const nlohmann::json j = nlohmann::json::parse(read_whole(meta));
    const std::string path = j.value("tokenizer", std::string());
    const auto fp = j.find("tokenizer_fingerprint");
    if (path.empty() || fp == j.end() || !fp->is_number_unsigned() || !fs::is_regular_file(path, ec)) return {};
    auto tok = try_load(path, /*say=*/false);
    if (!tok || tok->fingerprint() != fp->get<uint64_t>()) return {};
    return {fs::absolute(path).lexically_normal().string(), std::move(tok)};
  } catch (const std::exception&) {
    return {};  // a prepare.json of another shape: no tokenizer to take from it
  }
}

void write_new(const fs::path& to, const std::string& bytes, std::vector<std::string>& written) {
  std::error_code ec;
  const bool existed = fs::exists(to, ec);
  write_file_atomic(to.string(), bytes.data(), bytes.size());
  if (!existed) written.push_back(to.string());
}

void copy_tokenizer(const std::string& run_dir, FoundTokenizer found, nlohmann::json& recorded,
                    std::vector<std::string>& written) {
  const std::string bytes = read_whole(found.path);
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) {
    // Copying a model to keep its vocabulary would double the run's size.
    warn("the run keeps no copy of its tokenizer: " + found.path +
         " is a GGUF model; generate from the run with -z " + found.path);
    return;
  }
  const bool json = json_text(bytes);
  const fs::path dir = fs::path(run_dir) / kRunTokenizerDir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    fs::create_directory(dir, ec);
    if (ec) fail(dir.string() + ": cannot create the folder for the run's tokenizer: " + ec.message());
    written.push_back(dir.string());
  }
  const std::string name = json ? "tokenizer.json" : "tokenizer.bin";
  // tokenizer_config.json first: the copy is complete once the tokenizer itself is in place.
  const fs::path config = fs::path(found.path).parent_path() / "tokenizer_config.json";
  if (json && fs::is_regular_file(config, ec)) write_new(dir / "tokenizer_config.json", read_whole(config), written);
  write_new(dir / name, bytes, written);
  recorded[kRunTokenizerKey] = (fs::path(kRunTokenizerDir) / name).string();
  recorded["tokenizer_fingerprint"] = hex64(found.tok->fingerprint());
}

}  // namespace

const std::vector<std::string>& run_input_keys() {
  static const std::vector<std::string> keys = {kRunTokenizerKey, "tokenizer_fingerprint", "base_model"};
  return keys;
}

void record_run_inputs(const std::string& run_dir, const nlohmann::json& settings, nlohmann::json& recorded,
                       std::vector<std::string>& written) {
  if (!recorded.is_object()) recorded = nlohmann::json::object();
  std::error_code ec;
  if (!recorded.contains(kRunTokenizerKey)) {
    const std::string given = settings.value("tokenizer", std::string());
    FoundTokenizer found;
    if (!given.empty()) {
      if (fs::is_regular_file(given, ec)) found = {given, try_load(given, /*say=*/true)};
      else warn("the run keeps no copy of its tokenizer: " + given + " is not a file");
    } else {
      found = prepared_tokenizer(settings);
    }
    if (found.tok) copy_tokenizer(run_dir, std::move(found), recorded, written);
  }
  if (!recorded.contains("base_model")) {
    // A model file or folder (not a preset's name, not a .json config) holds pretrained weights.
    const std::string model = settings.value("model", std::string());
    if (!model.empty() && fs::exists(model, ec) && fs::path(model).extension() != ".json")
      recorded["base_model"] = model;
  }
}

}  // namespace anetrain
