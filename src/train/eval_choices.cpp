#include "train/eval_choices.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"
#include "train/eval_scorer.h"

namespace anetrain {

namespace {
[[noreturn]] void fail_line(const std::string& path, int line, const std::string& msg) {
  fail(path + ":" + std::to_string(line) + ": " + msg);
}

// Python's str.capitalize on ASCII letters: the first upper-cased, the rest lower-cased.
std::string capitalize(std::string s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    s[i] = char(i == 0 ? std::toupper(c) : std::tolower(c));
  }
  return s;
}

int code_points(const std::string& s) {
  int n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string text_field(const nlohmann::json& j, const char* key, const std::string& path, int line) {
  if (!j.contains(key) || !j[key].is_string()) fail_line(path, line, std::string("\"") + key + "\" must be a string");
  return j[key].get<std::string>();
}

ChoiceItem parse_item(const std::string& text, const std::string& path, int line) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail_line(path, line, "not JSON (a syntax error at byte " + std::to_string(e.byte) + " of the line)");
  }
  if (!j.is_object()) fail_line(path, line, "expected a JSON object");
  ChoiceItem it;
  it.line = line;
  const bool raw = j.contains("activity_label") && j.contains("ctx_a") && j.contains("ctx_b");
  if (!j.contains("endings") || !j["endings"].is_array() || j["endings"].size() < 2)
    fail_line(path, line, "\"endings\" must be an array of at least 2 strings");
  for (const auto& e : j["endings"]) {
    if (!e.is_string()) fail_line(path, line, "\"endings\" must be an array of at least 2 strings");
    it.endings.push_back(raw ? hellaswag_preprocess(e.get<std::string>()) : e.get<std::string>());
  }
  if (raw) {
    const std::string ctx =
        text_field(j, "ctx_a", path, line) + " " + capitalize(text_field(j, "ctx_b", path, line));
    it.context = hellaswag_preprocess(text_field(j, "activity_label", path, line) + ": " + ctx);
  } else {
    it.context = text_field(j, "ctx", path, line);
  }
  const auto& label = j.contains("label") ? j["label"] : nlohmann::json();
  long long v = -1;
  if (label.is_number_integer()) v = label.get<long long>();
  else if (label.is_string() && !label.get<std::string>().empty() &&
           std::all_of(label.get_ref<const std::string&>().begin(), label.get_ref<const std::string&>().end(),
                       [](unsigned char c) { return std::isdigit(c); }) &&
           label.get<std::string>().size() < 9)
    v = std::stoll(label.get<std::string>());
  if (v < 0 || v >= (long long)it.endings.size())
    fail_line(path, line, "\"label\" must be the index of one of the " + std::to_string(it.endings.size()) + " endings");
  it.label = int(v);
  return it;
}
}  // namespace

std::string hellaswag_preprocess(const std::string& text) {
  const size_t a = text.find_first_not_of(" \t\n\r\f\v");
  std::string s = a == std::string::npos ? "" : text.substr(a, text.find_last_not_of(" \t\n\r\f\v") - a + 1);
  for (size_t at; (at = s.find(" [title]")) != std::string::npos;) s.replace(at, 8, ". ");
  static const std::regex bracketed("\\[[^\\]\\n]*?\\]");
  s = std::regex_replace(s, bracketed, "");
  std::string out;  // every "  " → " ", left to right without overlap (Python's str.replace)
  for (size_t i = 0; i < s.size(); ++i) {
    out += s[i];
    if (s[i] == ' ' && i + 1 < s.size() && s[i + 1] == ' ') ++i;
  }
  return out;
}

std::vector<ChoiceItem> read_choices(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path + ": cannot open");
  std::vector<ChoiceItem> items;
  std::string text;
  for (int line = 1; std::getline(f, text); ++line) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    items.push_back(parse_item(text, path, line));
  }
  if (items.empty()) fail(path + ": no items");
  return items;
}

ChoiceReport score_choices(Backend& be, Model& m, const Tokenizer& tok, const std::vector<ChoiceItem>& items,
                           const std::string& path, int rows, const EvalProgress& progress) {
  const bool bos = tok.bos_id() >= 0;
  std::vector<ScoredSequence> seqs;
  ChoiceReport r;
  int T = 1;
  for (const ChoiceItem& it : items) {
    // The harness counts a context's trailing spaces as the ending's (its _encode_pair).
    const size_t kept = it.context.find_last_not_of(' ');
    const size_t n_ctx = tok.encode(it.context.substr(0, kept == std::string::npos ? 0 : kept + 1), bos).size();
    if (n_ctx == 0) fail_line(path, it.line, "the context encodes to no tokens and the tokenizer has no BOS");
    ChoiceScore cs;
    cs.line = it.line;
    cs.label = it.label;
    for (size_t e = 0; e < it.endings.size(); ++e) {
      ScoredSequence q;
      q.ids = tok.encode(it.context + " " + it.endings[e], bos);
      if (q.ids.size() <= n_ctx) fail_line(path, it.line, "ending " + std::to_string(e) + " encodes to no tokens");
      if (int(q.ids.size()) - 1 > m.cfg.max_seq_len)
        fail_line(path, it.line, "context and ending " + std::to_string(e) + " make " + std::to_string(q.ids.size()) +
                                     " tokens, more than the model's max_seq_len + 1");
      q.scored.assign(q.ids.size() - 1, 0);
      std::fill(q.scored.begin() + std::ptrdiff_t(n_ctx - 1), q.scored.end(), 1);
      T = std::max(T, int(q.ids.size()) - 1);
      cs.chars.push_back(code_points(it.endings[e]));
      cs.tokens.push_back(int(q.ids.size() - n_ctx));
      seqs.push_back(std::move(q));
    }
    r.items.push_back(std::move(cs));
  }
  const int n_seqs = int(seqs.size());
  SequenceScorer scorer(be, m, T, rows > 0 ? std::min(rows, n_seqs) : 0, n_seqs);
  std::vector<double> logprob(seqs.size());
  for (size_t first = 0; first < seqs.size(); first += size_t(scorer.rows())) {
    std::vector<const ScoredSequence*> batch;
    for (size_t i = first; i < std::min(seqs.size(), first + size_t(scorer.rows())); ++i) batch.push_back(&seqs[i]);
    const auto losses = scorer.score(batch);
    for (size_t i = 0; i < batch.size(); ++i) {
      double sum = 0;
      for (double v : losses[i]) sum -= v;
      logprob[first + i] = sum;
    }
    if (progress) progress(int64_t(first + batch.size()), n_seqs, NAN);
  }
  size_t k = 0, right = 0, right_norm = 0;
  for (ChoiceScore& cs : r.items) {
    double best = -INFINITY, best_norm = -INFINITY;
    for (size_t e = 0; e < cs.chars.size(); ++e, ++k) {
      const double lp = logprob[k], norm = lp / double(std::max(cs.chars[e], 1));
      cs.logprob.push_back(lp);
      if (lp > best) best = lp, cs.pred = int(e);  // the first of equals, as argmax
      if (norm > best_norm) best_norm = norm, cs.pred_norm = int(e);
    }
    right += cs.pred == cs.label;
    right_norm += cs.pred_norm == cs.label;
  }
  r.acc = double(right) / double(r.items.size());
  r.acc_norm = double(right_norm) / double(r.items.size());
  return r;
}

}  // namespace anetrain
