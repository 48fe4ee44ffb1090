// Document readers for `prepare`: plain text, JSON Lines, and JSON arrays (TinyStories). JSON
// arrays are streamed with a SAX parser so a 250 MB file is never held as a DOM.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "data/prepare.h"
#include "tokenizer/utf8.h"

namespace anetrain {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The text field of one record: "text", "story" or "content"; a bare string is itself the text.
bool text_of(const nlohmann::json& v, std::string& out) {
  if (v.is_string()) {
    out = v.get<std::string>();
    return true;
  }
  if (!v.is_object()) return false;
  for (const char* key : {"text", "story", "content"})
    if (v.contains(key) && v[key].is_string()) {
      out = v[key].get<std::string>();
      return true;
    }
  return false;
}

// Collects the text fields of the objects that are direct elements of a top-level array.
struct StorySax : nlohmann::json_sax<nlohmann::json> {
  std::vector<std::string>* docs;
  int depth = 0;
  bool want_value = false;
  bool null() override { want_value = false; return true; }
  bool boolean(bool) override { want_value = false; return true; }
  bool number_integer(number_integer_t) override { want_value = false; return true; }
  bool number_unsigned(number_unsigned_t) override { want_value = false; return true; }
  bool number_float(number_float_t, const string_t&) override { want_value = false; return true; }
  bool string(string_t& s) override {
    if (want_value || depth == 1) docs->push_back(s);  // a field we want, or a bare string element
    want_value = false;
    return true;
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { ++depth; return true; }
  bool key(string_t& k) override {
    want_value = depth == 2 && (k == "text" || k == "story" || k == "content");
    return true;
  }
  bool end_object() override { --depth; return true; }
  bool start_array(std::size_t) override { ++depth; return true; }
  bool end_array() override { --depth; return true; }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& ex) override {
    error_at = pos;
    message = ex.what();
    return false;
  }
  size_t error_at = 0;
  std::string message;
};

}  // namespace

std::vector<std::string> read_documents(const std::string& path, bool doc_per_line) {
  MappedFile f(path);
  const char* d = reinterpret_cast<const char*>(f.data());
  const size_t n = f.size();
  if (n == 0) fail(path + ": empty file");
  if (size_t bad = utf8_invalid_at(d, n); bad != size_t(-1)) fail_at(path, bad, "invalid UTF-8");
  std::vector<std::string> docs;
  if (ends_with(path, ".jsonl")) {
    size_t start = 0;
    while (start < n) {
      size_t end = start;
      while (end < n && d[end] != '\n') ++end;
      std::string_view line(d + start, end - start);
      if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
        nlohmann::json v;
        try {
          v = nlohmann::json::parse(line);
        } catch (const nlohmann::json::parse_error& e) {
          fail_at(path, start + (e.byte > 0 ? e.byte - 1 : 0), std::string("malformed JSON line: ") + e.what());
        } catch (const nlohmann::json::exception& e) {
          fail_at(path, start, std::string("unreadable JSON line: ") + e.what());
        }
        std::string text;
        if (!text_of(v, text)) fail_at(path, start, "JSON line has no \"text\", \"story\" or \"content\" string");
        docs.push_back(std::move(text));
      }
      start = end + 1;
    }
  } else if (ends_with(path, ".json")) {
    StorySax sax;
    sax.docs = &docs;
    if (!nlohmann::json::sax_parse(d, d + n, &sax)) fail_at(path, sax.error_at > 0 ? sax.error_at - 1 : 0, "malformed JSON: " + sax.message);
  } else {
    // Plain text: paragraphs (blank-line separated), or lines with doc_per_line.
    std::string cur;
    size_t start = 0;
    auto flush = [&] {
      if (!cur.empty()) docs.push_back(std::move(cur));
      cur.clear();
    };
    while (start < n) {
      size_t end = start;
      while (end < n && d[end] != '\n') ++end;
      std::string_view line(d + start, end - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (doc_per_line) {
        if (!line.empty()) docs.emplace_back(line);
      } else if (line.find_first_not_of(" \t") == std::string_view::npos) {
        flush();
      } else {
        if (!cur.empty()) cur.push_back('\n');
        cur.append(line);
      }
      start = end + 1;
    }
    flush();
  }
  if (docs.empty()) fail(path + ": no documents found");
  return docs;
}

}  // namespace anetrain
