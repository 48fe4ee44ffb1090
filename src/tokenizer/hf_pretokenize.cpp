// The Split pre-tokenizer regexes of Qwen2/3, Llama 3 and GPT-2, matched by hand: std::regex
// has no \p{..} and is slow. At each position the alternatives are tried in order and each
// returns what a backtracking engine (Oniguruma, which HF uses) would match there.
#include "tokenizer/hf_tokenizer.h"

namespace anetrain::hf {

namespace {

constexpr std::string_view kQwenPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Ch {
  char32_t cp = 0;
  size_t len = 0;  // 0 past the end
  uint8_t cls = 0;
};

class Matcher {
 public:
  explicit Matcher(std::string_view t) : t_(t) {}
  Ch at(size_t i) const {
    Ch c;
    if (i >= t_.size()) return c;
    int n = utf8_decode(t_, i, c.cp);
    if (n <= 0) {  // not reached with validated input; treat the byte as a symbol
      c.cp = 0xFFFD;
      n = 1;
    }
    c.len = size_t(n);
    c.cls = char_class(c.cp);
    return c;
  }
  // Bytes from i while every character has one of the classes in `any` (or none of them, when
  // `negate`), stopping after `max_chars` characters.
  size_t run(size_t i, uint8_t any, bool negate = false, size_t max_chars = SIZE_MAX) const {
    size_t j = i;
    for (size_t k = 0; k < max_chars; ++k) {
      Ch c = at(j);
      if (c.len == 0 || bool(c.cls & any) == negate) break;
      j += c.len;
    }
    return j - i;
  }
  // 's 't 're 've 'm 'll 'd after the apostrophe at i: the length matched, or 0.
  size_t contraction(size_t i, bool fold_case) const {
    if (t_[i] != '\'') return 0;
    static constexpr std::string_view kTails[] = {"s", "t", "re", "ve", "m", "ll", "d"};
    for (std::string_view tail : kTails) {
      size_t j = i + 1;
      bool ok = true;
      for (char want : tail) {
        Ch c = at(j);
        bool same = c.cp == char32_t(want);
        if (fold_case && !same) {
          same = c.cp == char32_t(want - 'a' + 'A') || (want == 's' && c.cp == 0x17F);  // ſ folds to s
        }
        if (!same) {
          ok = false;
          break;
        }
        j += c.len;
      }
      if (ok) return j - i;
    }
    return 0;
  }
  // The whitespace alternatives, given a whitespace character at i. `newline_alt` adds
  // \s*[\r\n]+, which backtracks to end just after the run's last \r or \n.
  size_t whitespace(size_t i, bool newline_alt) const {
    size_t j = i, last_nl = 0, last_start = i, chars = 0;
    for (Ch c = at(j); c.len && (c.cls & kSpace); c = at(j)) {
      last_start = j;
      j += c.len;
      ++chars;
      if (c.cls & kNewline) last_nl = j;
    }
    if (newline_alt && last_nl) return last_nl - i;
    if (j == t_.size() || chars == 1) return j - i;  // \s+(?!\S) at the end; else plain \s+
    return last_start - i;  // \s+(?!\S) gives back the last one before a non-space
  }
  size_t size() const { return t_.size(); }
  char byte(size_t i) const { return i < t_.size() ? t_[i] : '\0'; }

 private:
  std::string_view t_;
};

// (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,digits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
size_t match_qwen(const Matcher& m, size_t i, size_t digits) {
  if (size_t n = m.contraction(i, true)) return n;
  Ch c = m.at(i);
  if (c.cls & kLetter) return m.run(i, kLetter);
  if (!(c.cls & (kLetter | kNumber | kNewline))) {
    size_t letters = m.run(i + c.len, kLetter);
    if (letters) return c.len + letters;
  }
  if (c.cls & kNumber) return m.run(i, kNumber, false, digits);
  size_t j = i + (c.cp == ' ' ? 1 : 0);
  if (size_t sym = m.run(j, kSpace | kLetter | kNumber, true)) {
    j += sym;
    while (m.byte(j) == '\r' || m.byte(j) == '\n') ++j;
    return j - i;
  }
  if (c.cls & kSpace) return m.whitespace(i, true);
  return c.len;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
size_t match_gpt2(const Matcher& m, size_t i) {
  if (size_t n = m.contraction(i, false)) return n;
  Ch c = m.at(i);
  size_t j = i + (c.cp == ' ' ? 1 : 0);
  if (size_t n = m.run(j, kLetter)) return j + n - i;
  if (size_t n = m.run(j, kNumber)) return j + n - i;
  if (size_t n = m.run(j, kSpace | kLetter | kNumber, true)) return j + n - i;
  if (c.cls & kSpace) return m.whitespace(i, false);
  return c.len;
}

}  // namespace

std::optional<SplitRegex> recognise_split_regex(std::string_view pattern) {
  if (pattern == kQwenPattern) return SplitRegex::kQwen;
  if (pattern == kLlama3Pattern) return SplitRegex::kLlama3;
  if (pattern == kGpt2Pattern) return SplitRegex::kGpt2;
  return std::nullopt;
}

void split_words(std::string_view text, SplitRegex re, std::vector<std::string_view>& out) {
  Matcher m(text);
  for (size_t i = 0; i < text.size();) {
    size_t n = re == SplitRegex::kGpt2 ? match_gpt2(m, i)
                                       : match_qwen(m, i, re == SplitRegex::kQwen ? 1 : 3);
    if (n == 0) n = 1;  // unreachable: every character matches some alternative
    out.push_back(text.substr(i, n));
    i += n;
  }
}

}  // namespace anetrain::hf
