#include "formats/load.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "formats/blzt.h"
#include "formats/checkpoint_model.h"
#include "formats/gguf.h"
#include "formats/gguf_vocab.h"
#include "formats/hf.h"
#include "formats/llama2c.h"

namespace anetrain {

namespace {
// GGUF is recognised by its magic, so a renamed file still loads; a *.gguf without the magic goes
// to the GGUF reader too, whose "bad magic" says more than a llama2.c header complaint would.
bool is_gguf(const std::string& path) {
  char magic[4] = {};
  std::ifstream f(path, std::ios::binary);
  if (f.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0) return true;
  return std::filesystem::path(path).extension() == ".gguf";
}
}  // namespace

namespace {
LoadedModel load_laid_out(const std::string& spec, uint64_t seed, const ModelLayout& layout) {
  namespace fs = std::filesystem;
  const auto not_adapter = [](const ParamSpec& s) { return !is_adapter(s); };
  if (is_preset(spec)) {
    auto m = allocate_model(preset_config(spec), spec, layout);
    init_random_where(*m, seed, not_adapter);
    return {std::move(m), "preset"};
  }
  std::error_code ec;
  if (fs::exists(spec, ec) && !find_model_anck(spec).empty())
    return {relay_model(load_model_checkpoint(spec), layout, spec), "checkpoint"};
  if (fs::is_directory(spec, ec)) return {load_hf_folder(spec, layout), "hf"};
  if (!fs::exists(spec, ec)) {
    std::string list;
    for (const auto& n : preset_names()) list += (list.empty() ? "" : ", ") + n;
    fail("model '" + spec + "' is neither a preset (" + list + ") nor an existing file or folder");
  }
  if (fs::path(spec).extension() == ".json") {
    // Nothing to check a JSON config against: an allocation that fails names the file and the claim.
    auto m = allocate_model(config_from_file(spec), spec, layout);
    init_random_where(*m, seed, not_adapter);
    return {std::move(m), "config"};
  }
  if (is_gguf(spec)) return {load_gguf(spec, nullptr, layout), "gguf"};
  if (is_blzt(spec)) return {relay_model(load_blzt(spec), layout, spec), "blzt"};
  return {relay_model(load_llama2c(spec), layout, spec), "llama2c"};
}
}  // namespace

LoadedModel load_model(const std::string& spec, uint64_t seed, const ModelLayout& layout) {
  LoadedModel lm = load_laid_out(spec, seed, layout);
  if (lm.model->held) {
    std::error_code ec;
    const bool path = std::filesystem::exists(spec, ec);
    lm.model->base_source = {path ? std::filesystem::absolute(spec).string() : spec, seed};
  }
  return lm;
}

namespace {
bool is_llama2c_v2(const std::string& path) {
  char head[8] = {};
  std::ifstream f(path, std::ios::binary);
  return f.read(head, 8) && std::memcmp(head, "24ka\x02\0\0\0", 8) == 0;
}
}  // namespace

std::unique_ptr<PackedModel> load_packed_model(const std::string& spec, std::optional<WeightFormat> want, int group,
                                               std::string* kind) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(spec, ec) && fs::path(spec).extension() != ".json" && find_model_anck(spec).empty()) {
    std::unique_ptr<PackedModel> pm;
    if (is_gguf(spec)) {
      pm = load_gguf_packed(spec, want);
      if (kind) *kind = "gguf";
    } else if (is_llama2c_v2(spec) && (!want || *want == WeightFormat::q8_0)) {
      pm = load_llama2c_v2_packed(spec);
      if (kind) *kind = "llama2c";
    }
    if (pm && (!want || *want == pm->format)) return pm;
  }
  if (fs::is_directory(spec, ec) && find_model_anck(spec).empty() && (!want || *want == WeightFormat::bf16) &&
      fs::exists(fs::path(spec) / "config.json", ec)) {
    if (auto pm = load_hf_folder_bf16(spec)) {
      if (kind) *kind = "hf";
      return pm;
    }
  }
  LoadedModel lm = load_model(spec);
  if (kind) *kind = lm.kind;
  return pack_model(std::move(lm.model), want.value_or(WeightFormat::f32), group);
}

ModelConfig load_model_config(const std::string& spec, std::string* kind) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto set_kind = [&](const char* k) {
    if (kind) *kind = k;
  };
  if (is_preset(spec)) {
    set_kind("preset");
    return preset_config(spec);
  }
  if (fs::exists(spec, ec) && !find_model_anck(spec).empty()) {
    set_kind("checkpoint");
    return load_model_checkpoint(spec)->cfg;
  }
  if (fs::is_directory(spec, ec)) {
    set_kind("hf");
    return load_hf_config(spec);
  }
  if (fs::path(spec).extension() == ".json" && fs::exists(spec, ec)) {
    set_kind("config");
    return config_from_file(spec);
  }
  if (fs::is_regular_file(spec, ec) && is_blzt(spec)) {
    set_kind("blzt");
    return blzt_config(read_blzt_header(spec), spec);  // the header alone: weights stay unread
  }
  if (fs::is_regular_file(spec, ec) && is_gguf(spec)) {
    set_kind("gguf");
    return gguf_config(GgufReader(spec));  // metadata only: tensor data stays unread in the map
  }
  LoadedModel lm = load_model(spec);
  set_kind(lm.kind.c_str());
  return lm.model->cfg;
}

std::vector<std::string> model_input_files(const std::string& spec) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(spec, ec)) return fs::exists(spec, ec) ? std::vector<std::string>{spec} : std::vector<std::string>{};
  std::vector<std::string> files;
  // run/ckpt/step-N/model.anck is the deepest file a MODEL folder is read from.
  constexpr int kDepth = 3;
  for (auto it = fs::recursive_directory_iterator(spec, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() >= kDepth - 1) it.disable_recursion_pending();
    if (it->is_regular_file(ec)) files.push_back(it->path().string());
  }
  return files;
}

// -z, else a tokenizer file next to the model (or in the run directory's parent folders).
std::string find_tokenizer(const std::string& model, const std::string& given) {
  namespace fs = std::filesystem;
  if (!given.empty()) return given;
  std::error_code ec;
  // A GGUF carries its tokenizer when its vocabulary is of a kind anetrain reads (SentencePiece, or
  // byte-level BPE split as Qwen, Llama 3 or GPT-2 split); otherwise the search below may find the
  // tokenizer.json next to it.
  if (fs::is_regular_file(model, ec) && gguf_tokenizer_readable(model)) return model;
  if (std::string copy = run_tokenizer(model); !copy.empty()) return copy;
  fs::path dir = fs::is_directory(model, ec) ? fs::path(model) : fs::path(model).parent_path();
  for (int up = 0; up < 4 && !dir.empty(); ++up, dir = dir.parent_path())
    for (const char* name : {"tokenizer.json", "tokenizer.bin"})
      if (fs::exists(dir / name, ec)) return (dir / name).string();
  fail("no tokenizer found next to " + model + "\nhint: pass one with -z tokenizer.json|tokenizer.bin");
}

std::string run_tokenizer(const std::string& model) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(model, ec) || find_model_anck(model).empty()) return "";
  // RUN itself, RUN/ckpt/step-N, or the step folder of RUN/ckpt/step-N/model.anck.
  fs::path dir = fs::is_directory(model, ec) ? fs::path(model) : fs::path(model).parent_path();
  for (int up = 0; up < 3 && !dir.empty(); ++up, dir = dir.parent_path()) {
    if (!fs::is_regular_file(dir / "run.json", ec)) continue;
    const std::string settings = (dir / "run.json").string();
    nlohmann::json j;
    try {
      j = read_run_json(dir.string());
    } catch (const Error&) {
      return "";  // not a run's settings: the search next to the model decides
    }
    if (!marked_run_json(j) || !j.contains(kRunTokenizerKey)) return "";
    const nlohmann::json& name = j[kRunTokenizerKey];
    // Only a path inside the run: the copy is the run's own file.
    const fs::path rel = name.is_string() ? fs::path(name.get<std::string>()) : fs::path();
    bool inside = !rel.empty() && rel.is_relative();
    for (const auto& part : rel) inside = inside && part != "..";
    if (!inside) fail(settings + ": \"" + kRunTokenizerKey + "\" must name a file inside the run folder");
    const fs::path copy = dir / rel;
    if (!fs::is_regular_file(copy, ec))
      fail(copy.string() + ": the run's copy of its tokenizer is missing (" + settings + " names it)\n"
           "hint: pass the tokenizer the run was trained with, -z tokenizer.json|tokenizer.bin");
    return copy.string();
  }
  return "";
}


}  // namespace anetrain
