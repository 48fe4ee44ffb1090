// The Tokenizer over an hf::Spec. Encoding follows HF's order: added tokens are cut out of the
// raw text first (so normalization can never break them), each remaining stretch is normalized
// on its own, pre-tokenized into words, and each word goes through BPE.
#include "core/error.h"
#include "tokenizer/hf_tokenizer.h"

namespace anetrain {

namespace hf {
namespace {

struct Span {
  size_t begin, end;
  int32_t id;  // −1 for ordinary text
};

// Finds added tokens leftmost-longest (HF uses an Aho-Corasick automaton in that mode) and
// applies their single_word / lstrip / rstrip rules.
class AddedMatcher {
 public:
  void add(const AddedToken* t) {
    by_first_[uint8_t(t->content[0])].push_back(t);
    any_ = true;
  }
  bool empty() const { return !any_; }
  std::vector<Span> split(std::string_view s) const {
    std::vector<Span> out;
    size_t done = 0;
    for (size_t i = 0; i < s.size();) {
      const AddedToken* best = nullptr;
      for (const AddedToken* t : by_first_[uint8_t(s[i])])
        if ((!best || t->content.size() > best->content.size()) && s.substr(i, t->content.size()) == t->content)
          best = t;
      if (!best) {
        ++i;
        continue;
      }
      size_t start = i, stop = i + best->content.size();
      i = stop;
      if (best->single_word && ((start > 0 && word_before(s, start)) || word_after(s, stop))) continue;
      if (best->lstrip)
        while (start > done && (char_class(last_char(s, start)) & kSpace)) start = prev_start(s, start);
      if (best->rstrip) stop = skip_space(s, stop);
      if (start > done) out.push_back({done, start, -1});
      out.push_back({start, stop, best->id});
      done = i = stop;
    }
    if (done < s.size() || out.empty()) out.push_back({done, s.size(), -1});
    return out;
  }

 private:
  static size_t prev_start(std::string_view s, size_t i) {
    do --i;
    while (i > 0 && (uint8_t(s[i]) & 0xC0) == 0x80);
    return i;
  }
  static char32_t last_char(std::string_view s, size_t end) {
    char32_t cp = 0;
    utf8_decode(s, prev_start(s, end), cp);
    return cp;
  }
  static bool word_before(std::string_view s, size_t i) { return char_class(last_char(s, i)) & kWord; }
  static bool word_after(std::string_view s, size_t i) {
    char32_t cp = 0;
    return i < s.size() && utf8_decode(s, i, cp) > 0 && (char_class(cp) & kWord);
  }
  static size_t skip_space(std::string_view s, size_t i) {
    char32_t cp;
    for (int n; i < s.size() && (n = utf8_decode(s, i, cp)) > 0 && (char_class(cp) & kSpace);) i += size_t(n);
    return i;
  }
  std::array<std::vector<const AddedToken*>, 256> by_first_;
  bool any_ = false;
};

class HfTokenizer final : public Tokenizer {
 public:
  explicit HfTokenizer(Spec spec) : s_(std::move(spec)) {
    special_.assign(s_.bpe->pieces.size(), 0);
    for (auto& t : s_.added) {
      special_[size_t(t.id)] = t.special;
      // A "normalized" added token is looked for in normalized text, as its normalized form.
      if (t.normalized) {
        normalized_forms_.push_back(t);
        normalized_forms_.back().content = normalize(t.content);
      }
    }
    for (auto& t : s_.added)
      if (!t.normalized) raw_.add(&t);
    for (auto& t : normalized_forms_)
      if (!t.content.empty()) normalized_.add(&t);
    fingerprint_ = compute_fingerprint();
  }

  std::string kind() const override { return s_.byte_level ? "hf-bytelevel" : "hf-sentencepiece"; }
  int vocab_size() const override { return int(s_.bpe->pieces.size()); }

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool add_eos) const override {
    if (size_t bad = utf8_first_invalid(text); bad != std::string_view::npos)
      fail("tokenizer: input text is not valid UTF-8 at byte " + std::to_string(bad));
    std::vector<int32_t> out;
    if (add_bos && s_.bos_id >= 0) out.push_back(s_.bos_id);
    for (const Span& sp : raw_.split(text)) {
      if (sp.id >= 0) {
        out.push_back(sp.id);
        continue;
      }
      std::string norm = normalize(text.substr(sp.begin, sp.end - sp.begin));
      if (normalized_.empty()) {
        encode_normalized(norm, out);
        continue;
      }
      for (const Span& np : normalized_.split(norm)) {
        if (np.id >= 0) out.push_back(np.id);
        else encode_normalized(std::string_view(norm).substr(np.begin, np.end - np.begin), out);
      }
    }
    if (add_eos && s_.eos_id >= 0) out.push_back(s_.eos_id);
    return out;
  }

  // Ids without a piece are skipped, as HF's decode does (models often pad the vocabulary).
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::vector<std::string> pieces;
    pieces.reserve(ids.size());
    for (int32_t id : ids)
      if (has_piece(id)) pieces.push_back(s_.bpe->pieces[size_t(id)]);
    return run_decoder(s_.decoder, std::move(pieces), false, true);
  }
  // The raw bytes one token adds; a leading-space Strip applies only to a stream's first token.
  std::string decode_step(int32_t prev, int32_t id) const override {
    if (!has_piece(id)) return "";
    bool first = prev < 0 || (prev == s_.bos_id && s_.bos_id >= 0);
    return run_decoder(s_.decoder, {s_.bpe->pieces[size_t(id)]}, true, first);
  }
  std::string piece(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) fail("tokenizer: id " + std::to_string(id) + " is outside the vocabulary");
    return s_.bpe->pieces[size_t(id)];
  }
  std::optional<int32_t> piece_id(std::string_view piece) const override {
    for (const auto& t : s_.added)
      if (t.content == piece) return t.id;
    auto it = s_.bpe->ids.find(piece);
    if (it == s_.bpe->ids.end()) return std::nullopt;
    return it->second;
  }
  int32_t bos_id() const override { return s_.bos_id; }
  int32_t eos_id() const override { return s_.eos_id; }
  bool is_special(int32_t id) const override { return id >= 0 && size_t(id) < special_.size() && special_[size_t(id)]; }
  uint64_t fingerprint() const override { return fingerprint_; }

 private:
  bool has_piece(int32_t id) const { return id >= 0 && id < vocab_size() && !s_.bpe->pieces[size_t(id)].empty(); }

  std::string normalize(std::string_view text) const {
    std::string s(text);
    for (const NormalizeStep& st : s_.normalizer) {
      if (st.op == NormalizeStep::kNfc) s = nfc(s);
      else if (st.op == NormalizeStep::kPrepend && !s.empty()) s.insert(0, st.to);  // never onto ""
      else if (st.op == NormalizeStep::kReplace) replace_all(s, st.from, st.to);
    }
    return s;
  }

  void encode_normalized(std::string_view text, std::vector<int32_t>& out) const {
    if (s_.splits.empty()) return s_.bpe->encode_unsplit(text, out);
    std::vector<std::string_view> words{text}, next;
    for (SplitRegex re : s_.splits) {
      next.clear();
      for (std::string_view w : words) split_words(w, re, next);
      words.swap(next);
    }
    for (std::string_view w : words) s_.bpe->encode_word(w, out);
  }

  // FNV-1a 64 over the kind, every piece in id order and every merge in rank order.
  uint64_t compute_fingerprint() const {
    uint64_t h = 0xcbf29ce484222325ull;
    auto eat = [&](const void* p, size_t n) {
      for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 0x100000001b3ull;
    };
    const uint8_t sep = 0xFF;  // never inside UTF-8, so piece boundaries are unambiguous
    std::string k = kind();
    eat(k.data(), k.size());
    eat(&sep, 1);
    for (const auto& p : s_.bpe->pieces) {
      eat(p.data(), p.size());
      eat(&sep, 1);
    }
    for (const Merge& m : s_.bpe->merges) {
      for (int32_t v : {m.left, m.right}) {
        const uint8_t le[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
        eat(le, 4);
      }
    }
    return h;
  }

  Spec s_;
  std::vector<AddedToken> normalized_forms_;
  AddedMatcher raw_, normalized_;
  std::vector<uint8_t> special_;
  uint64_t fingerprint_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> make_hf_tokenizer(Spec spec) { return std::make_unique<HfTokenizer>(std::move(spec)); }

}  // namespace hf

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path) {
  return hf::make_hf_tokenizer(hf::parse_tokenizer_json(path));
}

}  // namespace anetrain
