// The BPE model part of tokenizer.json (vocab, merges in either serialisation, flags), the added
// tokens, and BOS/EOS: from tokenizer_config.json when it sits beside the file (that is what
// transformers honours), else from the post-processor template and the usual token names.
#include <nlohmann/json.hpp>

#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/hf_tokenizer.h"

namespace anetrain::hf {

namespace {

using json = nlohmann::json;
constexpr int64_t kMaxId = 1 << 24;  // far above any real vocabulary; bounds what a file can make us allocate

struct Ctx {
  const std::string& path;
  [[noreturn]] void bad(const std::string& where, const std::string& msg) const {
    fail(path + ": " + where + ": " + msg);
  }
  bool flag(const json& o, const char* key, const std::string& where) const {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return false;
    if (!it->is_boolean()) bad(where + "." + key, "expected true or false");
    return it->get<bool>();
  }
  int32_t id(const json& v, const std::string& where) const {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= kMaxId)
      bad(where, "token id must be an integer in [0, " + std::to_string(kMaxId) + "), got " + v.dump());
    return int32_t(v.get<int64_t>());
  }
};

void place(const Ctx& c, BpeModel& bpe, std::vector<uint8_t>& used, int32_t id, const std::string& piece,
           const std::string& where) {
  if (size_t(id) >= bpe.pieces.size()) {
    bpe.pieces.resize(size_t(id) + 1);
    used.resize(size_t(id) + 1);
  }
  if (used[size_t(id)]) c.bad(where, "id " + std::to_string(id) + " is given to two vocabulary entries");
  used[size_t(id)] = 1;
  bpe.pieces[size_t(id)] = piece;
}

int32_t merge_part(const Ctx& c, const BpeModel& bpe, std::string_view piece, const std::string& where) {
  auto it = bpe.ids.find(piece);
  if (it == bpe.ids.end()) c.bad(where, json(std::string(piece)).dump() + " is not in the vocabulary");
  return it->second;
}

std::optional<std::string> token_name(const Ctx& c, const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  c.bad(key, "expected a token string or {\"content\": ...}");
}

}  // namespace

void read_bpe_model(const std::string& path, const json& root, Spec& spec) {
  Ctx c{path};
  auto mit = root.find("model");
  if (mit == root.end() || !mit->is_object()) c.bad("model", "missing (expected a BPE model object)");
  const json& m = *mit;
  if (m.contains("type") && m["type"] != "BPE") c.bad("model.type", m["type"].dump() + " is not supported (only BPE)");
  if (m.contains("dropout") && !m["dropout"].is_null() && !(m["dropout"].is_number() && m["dropout"] == 0))
    c.bad("model.dropout", "BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(key) && !m[key].is_null() && m[key] != "") c.bad(std::string("model.") + key, "is not supported");

  auto bpe = std::make_unique<BpeModel>();
  bpe->byte_level = spec.byte_level;
  bpe->byte_fallback = c.flag(m, "byte_fallback", "model");
  bpe->fuse_unk = c.flag(m, "fuse_unk", "model");
  bpe->ignore_merges = c.flag(m, "ignore_merges", "model");
  if (bpe->byte_level && bpe->byte_fallback) c.bad("model.byte_fallback", "not supported with a ByteLevel pre-tokenizer");

  auto vit = m.find("vocab");
  if (vit == m.end() || !vit->is_object()) c.bad("model.vocab", "missing (expected an object piece → id)");
  std::vector<uint8_t> used;
  bpe->ids.reserve(vit->size());
  for (const auto& [piece, v] : vit->items()) {
    std::string where = "model.vocab[" + json(piece).dump() + "]";
    int32_t id = c.id(v, where);
    place(c, *bpe, used, id, piece, where);
    bpe->ids.emplace(piece, id);
  }

  auto git = m.find("merges");
  if (git == m.end() || !git->is_array()) c.bad("model.merges", "missing (expected an array)");
  bpe->merges.reserve(git->size());
  std::string joined;
  for (size_t i = 0; i < git->size(); ++i) {
    const json& e = (*git)[i];
    std::string where = "model.merges[" + std::to_string(i) + "]";
    std::string_view a, b;
    if (e.is_string()) {  // tokenizers < 0.20: "a b"
      const std::string& s = e.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos) c.bad(where, json(s).dump() + " is not two pieces separated by a space");
      a = std::string_view(s).substr(0, sp);
      b = std::string_view(s).substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get_ref<const std::string&>();
      b = e[1].get_ref<const std::string&>();
    } else {
      c.bad(where, "expected \"a b\" or [\"a\", \"b\"], got " + e.dump());
    }
    joined.assign(a).append(b);
    bpe->merges.push_back({merge_part(c, *bpe, a, where), merge_part(c, *bpe, b, where),
                           merge_part(c, *bpe, joined, where)});
  }
  if (auto u = m.find("unk_token"); u != m.end() && u->is_string())
    if (auto it = bpe->ids.find(u->get<std::string>()); it != bpe->ids.end()) bpe->unk_id = it->second;

  // Added tokens own their ids: their content is what decoding shows for them.
  std::vector<uint8_t> added_used(used.size());
  if (auto ait = root.find("added_tokens"); ait != root.end() && !ait->is_null()) {
    if (!ait->is_array()) c.bad("added_tokens", "expected an array");
    for (size_t i = 0; i < ait->size(); ++i) {
      const json& t = (*ait)[i];
      std::string where = "added_tokens[" + std::to_string(i) + "]";
      if (!t.is_object()) c.bad(where, "expected an object");
      AddedToken tok;
      tok.id = c.id(t.contains("id") ? t["id"] : json(), where + ".id");
      if (!t.contains("content") || !t["content"].is_string() || t["content"] == "")
        c.bad(where + ".content", "expected a non-empty string");
      tok.content = t["content"].get<std::string>();
      tok.single_word = c.flag(t, "single_word", where);
      tok.lstrip = c.flag(t, "lstrip", where);
      tok.rstrip = c.flag(t, "rstrip", where);
      tok.normalized = c.flag(t, "normalized", where);
      tok.special = c.flag(t, "special", where);
      if (size_t(tok.id) >= added_used.size()) added_used.resize(size_t(tok.id) + 1);
      if (added_used[size_t(tok.id)]) c.bad(where, "id " + std::to_string(tok.id) + " is added twice");
      added_used[size_t(tok.id)] = 1;
      if (size_t(tok.id) >= bpe->pieces.size()) bpe->pieces.resize(size_t(tok.id) + 1);
      bpe->pieces[size_t(tok.id)] = tok.content;
      spec.added.push_back(std::move(tok));
    }
  }
  bpe->index();
  spec.bpe = std::move(bpe);
}

void read_special_ids(const std::string& path, const json& root, Spec& spec) {
  auto lookup = [&](const std::string& name) -> int32_t {
    for (const auto& t : spec.added)
      if (t.content == name) return t.id;
    auto it = spec.bpe->ids.find(name);
    return it == spec.bpe->ids.end() ? -1 : it->second;
  };
  // Llama-style files add BOS through a TemplateProcessing post-processor.
  int32_t template_bos = -1;
  auto pp = root.find("post_processor");
  const bool is_template = pp != root.end() && pp->is_object() && pp->contains("type") &&
                           (*pp)["type"].is_string() && (*pp)["type"].get<std::string>() == "TemplateProcessing";
  if (is_template && pp->contains("single") && (*pp)["single"].is_array()) {
    const json& single = (*pp)["single"];
    if (!single.empty() && single[0].is_object() && single[0].contains("SpecialToken") &&
        single[0]["SpecialToken"].is_object()) {
      const json& st = single[0]["SpecialToken"];
      if (st.contains("id") && st["id"].is_string()) template_bos = lookup(st["id"].get<std::string>());
    }
  }
  spec.bos_id = template_bos;
  spec.eos_id = -1;
  for (const char* name : {"</s>", "<|endoftext|>"})
    for (const auto& t : spec.added)
      if (spec.eos_id < 0 && t.content == name) spec.eos_id = t.id;

  std::string cfg_path = (std::filesystem::path(path).parent_path() / "tokenizer_config.json").string();
  if (!std::filesystem::exists(cfg_path)) return;
  json cfg;
  {
    MappedFile f(cfg_path);
    try {
      cfg = json::parse(f.data(), f.data() + f.size());
    } catch (const json::parse_error& e) {
      fail_at(cfg_path, e.byte > 0 ? e.byte - 1 : 0, std::string("not valid JSON: ") + e.what());
    } catch (const json::exception& e) {
      fail(cfg_path + ": unreadable JSON: " + e.what());
    }
  }
  Ctx c{cfg_path};
  if (!cfg.is_object()) c.bad("top level", "expected an object");
  auto named = [&](const char* key) -> std::optional<int32_t> {
    auto name = token_name(c, cfg, key);
    if (!name) return std::nullopt;
    int32_t id = lookup(*name);
    if (id < 0) c.bad(key, json(*name).dump() + " is not in the vocabulary of " + path);
    return id;
  };
  std::optional<int32_t> bos = named("bos_token"), eos = named("eos_token");
  if (eos) spec.eos_id = *eos;
  if (auto it = cfg.find("add_bos_token"); it != cfg.end() && it->is_boolean())
    spec.bos_id = it->get<bool>() ? (bos ? *bos : template_bos) : -1;
}

}  // namespace anetrain::hf
