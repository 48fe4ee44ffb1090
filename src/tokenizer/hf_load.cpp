// Reads tokenizer.json (and tokenizer_config.json beside it) into an hf::Spec. Only the
// components these two tokenizer families use are accepted; anything else is an Error that names
// the component, so an unfamiliar file is refused instead of being tokenized slightly wrong.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/hf_tokenizer.h"

namespace anetrain::hf {

namespace {

using json = nlohmann::json;

json parse_json_file(const std::string& path) {
  MappedFile f(path);
  try {
    return json::parse(f.data(), f.data() + f.size());
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    fail_at(path, e.byte > 0 ? e.byte - 1 : 0, "not valid JSON: " + what);
  } catch (const json::exception& e) {  // e.g. a number too large for a double
    fail(path + ": unreadable JSON: " + e.what());
  }
}

// Field access that reports the file and the JSON location of whatever is wrong.
struct Reader {
  std::string path;
  [[noreturn]] void bad(const std::string& where, const std::string& msg) const {
    fail(path + ": " + where + ": " + msg);
  }
  const json* opt(const json& o, const char* key) const {
    auto it = o.find(key);
    return it == o.end() || it->is_null() ? nullptr : &*it;
  }
  const json& need(const json& o, const char* key, const std::string& where) const {
    const json* v = opt(o, key);
    if (!v) bad(where, std::string("missing \"") + key + "\"");
    return *v;
  }
  std::string str(const json& o, const char* key, const std::string& where) const {
    const json& v = need(o, key, where);
    if (!v.is_string()) bad(where + "." + key, "expected a string");
    return v.get<std::string>();
  }
  bool flag(const json& o, const char* key, bool dflt, const std::string& where) const {
    const json* v = opt(o, key);
    if (!v) return dflt;
    if (!v->is_boolean()) bad(where + "." + key, "expected true or false");
    return v->get<bool>();
  }
  std::string type(const json& o, const std::string& where) const {
    if (!o.is_object()) bad(where, "expected an object");
    return str(o, "type", where);
  }
};

std::string replace_pattern(const Reader& r, const json& o, const std::string& where) {
  const json& pat = r.need(o, "pattern", where);
  if (!pat.is_object() || !pat.contains("String") || !pat["String"].is_string())
    r.bad(where + ".pattern", "only {\"String\": ...} patterns are supported, got " + pat.dump());
  return pat["String"].get<std::string>();
}

void read_normalizer(const Reader& r, const json& n, const std::string& where, Spec& spec) {
  std::string t = r.type(n, where);
  if (t == "Sequence") {
    const json& list = r.need(n, "normalizers", where);
    if (!list.is_array()) r.bad(where + ".normalizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      read_normalizer(r, list[i], where + ".normalizers[" + std::to_string(i) + "]", spec);
  } else if (t == "NFC") {
    spec.normalizer.push_back({NormalizeStep::kNfc, "", ""});
  } else if (t == "Prepend") {
    spec.normalizer.push_back({NormalizeStep::kPrepend, "", r.str(n, "prepend", where)});
  } else if (t == "Replace") {
    std::string from = replace_pattern(r, n, where);
    if (from.empty()) r.bad(where, "empty Replace pattern");
    spec.normalizer.push_back({NormalizeStep::kReplace, from, r.str(n, "content", where)});
  } else {
    r.bad(where, "normalizer \"" + t + "\" is not supported (NFC, Prepend, Replace, Sequence are)");
  }
}

void read_pre_tokenizer(const Reader& r, const json& p, const std::string& where, Spec& spec) {
  std::string t = r.type(p, where);
  if (t == "Sequence") {
    const json& list = r.need(p, "pretokenizers", where);
    if (!list.is_array()) r.bad(where + ".pretokenizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      read_pre_tokenizer(r, list[i], where + ".pretokenizers[" + std::to_string(i) + "]", spec);
  } else if (t == "Split") {
    const json& pat = r.need(p, "pattern", where);
    if (!pat.is_object() || !pat.contains("Regex") || !pat["Regex"].is_string())
      r.bad(where + ".pattern", "only Regex split patterns are supported, got " + pat.dump());
    std::string re = pat["Regex"].get<std::string>();
    auto known = recognise_split_regex(re);
    if (!known)
      r.bad(where, "unsupported split regex " + json(re).dump() +
                       " (only the Qwen2/3, Llama 3 and GPT-2 patterns are implemented)");
    if (r.str(p, "behavior", where) != "Isolated" || r.flag(p, "invert", false, where))
      r.bad(where, "only behavior \"Isolated\" without invert is supported");
    spec.splits.push_back(*known);
  } else if (t == "ByteLevel") {
    spec.byte_level = true;
    if (r.flag(p, "add_prefix_space", true, where))
      r.bad(where, "ByteLevel with add_prefix_space true is not supported");
    if (r.flag(p, "use_regex", true, where)) spec.splits.push_back(SplitRegex::kGpt2);
  } else {
    r.bad(where, "pre_tokenizer \"" + t + "\" is not supported (Split, ByteLevel, Sequence are)");
  }
}

void read_decoder(const Reader& r, const json& d, const std::string& where, Spec& spec) {
  std::string t = r.type(d, where);
  if (t == "Sequence") {
    const json& list = r.need(d, "decoders", where);
    if (!list.is_array()) r.bad(where + ".decoders", "expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      read_decoder(r, list[i], where + ".decoders[" + std::to_string(i) + "]", spec);
  } else if (t == "ByteLevel") {
    spec.decoder.push_back({DecodeStep::kByteLevel, "", "", 0, 0});
  } else if (t == "Replace") {
    spec.decoder.push_back({DecodeStep::kReplace, replace_pattern(r, d, where), r.str(d, "content", where)});
  } else if (t == "ByteFallback") {
    spec.decoder.push_back({DecodeStep::kByteFallback, "", "", 0, 0});
  } else if (t == "Fuse") {
    spec.decoder.push_back({DecodeStep::kFuse, "", "", 0, 0});
  } else if (t == "Strip") {
    std::string c = r.str(d, "content", where);
    const json& start = r.need(d, "start", where);
    const json& stop = r.need(d, "stop", where);
    if (!start.is_number_unsigned() || !stop.is_number_unsigned() || start.get<uint64_t>() > 1000 ||
        stop.get<uint64_t>() > 1000)
      r.bad(where, "start/stop must be small non-negative integers");
    spec.decoder.push_back({DecodeStep::kStrip, c, "", int(start.get<uint64_t>()), int(stop.get<uint64_t>())});
  } else {
    r.bad(where, "decoder \"" + t + "\" is not supported (ByteLevel, Replace, ByteFallback, Fuse, Strip are)");
  }
}

}  // namespace

// hf_load_model.cpp: the vocabulary, merges and added tokens; then BOS/EOS.
void read_bpe_model(const std::string& path, const nlohmann::json& root, Spec& spec);
void read_special_ids(const std::string& path, const nlohmann::json& root, Spec& spec);

Spec parse_tokenizer_json(const std::string& path) {
  json root = parse_json_file(path);
  Reader r{path};
  if (!root.is_object()) fail_at(path, 0, "expected a JSON object (a Hugging Face tokenizer.json)");
  Spec spec;
  spec.path = path;
  if (const json* n = r.opt(root, "normalizer")) read_normalizer(r, *n, "normalizer", spec);
  if (const json* p = r.opt(root, "pre_tokenizer")) read_pre_tokenizer(r, *p, "pre_tokenizer", spec);
  const json* d = r.opt(root, "decoder");
  if (!d) r.bad("decoder", "missing: without one ids cannot be turned back into text");
  read_decoder(r, *d, "decoder", spec);
  read_bpe_model(path, root, spec);
  read_special_ids(path, root, spec);
  return spec;
}

}  // namespace anetrain::hf
