#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <cstdio>
#include <queue>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/sp_bpe.h"
#include "tokenizer/utf8.h"

namespace anetrain {

namespace {

const std::string kSpace = "\xe2\x96\x81";  // ▁
constexpr int kFirstChar = 259;             // after <unk> <s> </s> and 256 byte pieces

// Word frequencies of the normalised corpus: each line gets the dummy prefix, spaces become ▁,
// and a new word starts at every ▁ (SentencePiece's split), so merges never cross words.
std::unordered_map<std::string, uint64_t> count_words(const std::vector<std::string>& files) {
  std::unordered_map<std::string, uint64_t> words;
  for (const auto& path : files) {
    MappedFile f(path);
    const char* d = reinterpret_cast<const char*>(f.data());
    if (size_t bad = utf8_invalid_at(d, f.size()); bad != size_t(-1))
      fail_at(path, bad, "invalid UTF-8 (the tokenizer trainer reads UTF-8 text)");
    size_t start = 0;
    while (start < f.size()) {
      size_t end = start;
      while (end < f.size() && d[end] != '\n') ++end;
      std::string_view line(d + start, end - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!line.empty()) {
        std::string word = kSpace;
        for (char c : line) {
          if (c == ' ') {
            ++words[word];
            word = kSpace;
          } else {
            word.push_back(c);
          }
        }
        ++words[word];
      }
      start = end + 1;
    }
  }
  return words;
}

struct PairQueueEntry {
  uint64_t count;
  uint64_t key;  // (left id << 32) | right id
  bool operator<(const PairQueueEntry& o) const { return count != o.count ? count < o.count : key > o.key; }
};

}  // namespace

BpeVocab train_bpe(const std::vector<std::string>& files, const BpeTrainOptions& opt) {
  if (opt.vocab_size < kFirstChar + 1)
    fail("tokenizer train: --vocab " + std::to_string(opt.vocab_size) + " is smaller than the byte alphabet: at least " +
         std::to_string(kFirstChar + 1) + " (3 specials + 256 bytes + 1 character) are needed");
  if (opt.vocab_size > 65536) fail("tokenizer train: --vocab must be ≤ 65536");
  const auto word_counts = count_words(files);
  if (word_counts.empty()) fail("tokenizer train: the corpus is empty");

  // Characters by frequency; the most frequent covering `character_coverage` get pieces.
  std::unordered_map<std::string, uint64_t> char_counts;
  uint64_t total_chars = 0;
  for (const auto& [w, n] : word_counts)
    for (size_t i = 0; i < w.size(); i += utf8_len(w[i])) {
      char_counts[w.substr(i, utf8_len(w[i]))] += n;
      total_chars += n;
    }
  std::vector<std::pair<std::string, uint64_t>> chars(char_counts.begin(), char_counts.end());
  std::sort(chars.begin(), chars.end(), [](auto& a, auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  BpeVocab v;
  v.pieces = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    v.pieces.push_back(buf);
  }
  v.scores.assign(v.pieces.size(), 0.0f);
  std::unordered_map<std::string, int> id_of;
  uint64_t covered = 0;
  int n_chars = 0;
  for (const auto& [c, n] : chars) {
    if (int(v.pieces.size()) >= opt.vocab_size) break;
    if (covered >= uint64_t(opt.character_coverage * double(total_chars)) && v.pieces.size() > size_t(kFirstChar)) break;
    id_of[c] = int(v.pieces.size());
    v.pieces.push_back(c);
    v.scores.push_back(0.0f);
    covered += n;
    ++n_chars;
  }

  // Symbol sequences; characters without a piece become byte pieces, which never merge.
  std::vector<std::vector<int>> words;
  std::vector<uint64_t> freq;
  for (const auto& [w, n] : word_counts) {
    std::vector<int> syms;
    for (size_t i = 0; i < w.size(); i += utf8_len(w[i])) {
      auto it = id_of.find(w.substr(i, utf8_len(w[i])));
      if (it != id_of.end()) {
        syms.push_back(it->second);
      } else {
        for (size_t k = 0; k < utf8_len(w[i]); ++k) syms.push_back(3 + uint8_t(w[i + k]));
      }
    }
    words.push_back(std::move(syms));
    freq.push_back(n);
  }
  auto mergeable = [](int a, int b) { return a >= kFirstChar && b >= kFirstChar; };
  auto key = [](int a, int b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); };
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<uint32_t>> pair_words;  // may hold stale entries
  for (uint32_t w = 0; w < words.size(); ++w)
    for (size_t i = 0; i + 1 < words[w].size(); ++i)
      if (mergeable(words[w][i], words[w][i + 1])) {
        pair_count[key(words[w][i], words[w][i + 1])] += int64_t(freq[w]);
        pair_words[key(words[w][i], words[w][i + 1])].push_back(w);
      }
  std::priority_queue<PairQueueEntry> queue;
  for (const auto& [k, n] : pair_count) queue.push({uint64_t(n), k});

  std::vector<uint32_t> seen(words.size(), 0);
  uint32_t stamp = 0;
  int rank = 0;
  while (int(v.pieces.size()) < opt.vocab_size && !queue.empty()) {
    const PairQueueEntry top = queue.top();
    queue.pop();
    auto pc = pair_count.find(top.key);
    if (pc == pair_count.end() || pc->second != int64_t(top.count)) continue;  // stale
    if (top.count < 2) break;  // a merge seen once teaches nothing
    const int a = int(top.key >> 32), b = int(top.key & 0xffffffffu);
    const std::string merged = v.pieces[a] + v.pieces[b];
    int n;
    if (auto it = id_of.find(merged); it != id_of.end()) {
      n = it->second;  // the same string reached by another split: reuse its id
    } else {
      n = int(v.pieces.size());
      id_of[merged] = n;
      v.pieces.push_back(merged);
      v.scores.push_back(-float(rank));
    }
    v.merges.push_back({v.pieces[a], v.pieces[b]});
    ++rank;
    ++stamp;
    std::vector<uint64_t> touched;
    for (uint32_t w : pair_words[top.key]) {
      if (seen[w] == stamp) continue;
      seen[w] = stamp;
      auto& s = words[w];
      const int64_t f = int64_t(freq[w]);
      bool has = false;
      for (size_t i = 0; i + 1 < s.size(); ++i) has |= (s[i] == a && s[i + 1] == b);
      if (!has) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i)
        if (mergeable(s[i], s[i + 1])) {
          pair_count[key(s[i], s[i + 1])] -= f;
          touched.push_back(key(s[i], s[i + 1]));
        }
      std::vector<int> out;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          out.push_back(n);
          ++i;
        } else {
          out.push_back(s[i]);
        }
      }
      s.swap(out);
      for (size_t i = 0; i + 1 < s.size(); ++i)
        if (mergeable(s[i], s[i + 1])) {
          const uint64_t k = key(s[i], s[i + 1]);
          pair_count[k] += f;
          pair_words[k].push_back(w);
          touched.push_back(k);
        }
    }
    pair_words.erase(top.key);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t k : touched) {
      auto it = pair_count.find(k);
      if (it->second > 0) queue.push({uint64_t(it->second), k});
      else pair_count.erase(it);
    }
  }
  if (opt.verbose)
    std::fprintf(stderr, "tokenizer train: %zu distinct words, %d of %zu characters kept, %d merges, vocabulary %zu\n",
                 word_counts.size(), n_chars, chars.size(), rank, v.pieces.size());
  return v;
}

void write_bpe_tokenizer_json(const BpeVocab& v, const std::string& path) {
  using oj = nlohmann::ordered_json;
  oj added = oj::array();
  for (int i = 0; i < 3; ++i)
    added.push_back({{"id", i}, {"content", v.pieces[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  oj vocab = oj::object();
  for (size_t i = 0; i < v.pieces.size(); ++i) vocab[v.pieces[i]] = i;
  oj merges = oj::array();
  for (const auto& [a, b] : v.merges) merges.push_back(a + " " + b);
  oj j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added;
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers", {{{"type", "Prepend"}, {"prepend", kSpace}},
                                      {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}}}};
  j["pre_tokenizer"] = nullptr;
  // Llama's template: BOS before every sequence, which is also how readers learn the BOS id.
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                     {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                         {"pair", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                   {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                   {{"SpecialToken", {{"id", "<s>"}, {"type_id", 1}}}},
                                   {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
                         {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}};
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                                {{"type", "ByteFallback"}},
                                {{"type", "Fuse"}},
                                {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  j["model"] = {{"type", "BPE"},         {"dropout", nullptr},     {"unk_token", "<unk>"},
                {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                {"fuse_unk", true},      {"byte_fallback", true},  {"ignore_merges", false},
                {"vocab", vocab},        {"merges", merges}};
  const std::string text = j.dump(1) + "\n";
  write_file_atomic(path, text.data(), text.size());
}

void write_bpe_tokenizer_bin(const BpeVocab& v, const std::string& path) {
  // llama2.c stores spaces as ' ' and BOS/EOS with the newlines its decoder expects.
  std::vector<std::string> stored;
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    std::string s = i == 1 ? "\n<s>\n" : i == 2 ? "\n</s>\n" : v.pieces[i];
    for (size_t p = 0; (p = s.find(kSpace, p)) != std::string::npos;) s.replace(p, kSpace.size(), " ");
    stored.push_back(std::move(s));
  }
  write_llama2c_tokenizer(path, stored, v.scores);
}

}  // namespace anetrain
