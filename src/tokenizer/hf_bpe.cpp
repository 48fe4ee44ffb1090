// BPE over ranked merges, as HF's models::bpe applies them: start from characters (or bytes),
// then repeatedly merge the adjacent pair of lowest rank, leftmost first. Words repeat a lot in
// prose, so results are cached per word (bounded, one cache per thread).
#include <cstdio>
#include <atomic>
#include <queue>

#include "core/error.h"
#include "tokenizer/hf_tokenizer.h"

namespace anetrain::hf {

namespace {
constexpr std::string_view kMeta = "\u2581";  // SentencePiece's visible space
}

// Open addressing on the (left, right) id pair: the merge lookup is the innermost operation.
struct BpeModel::MergeTable {
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0, merged = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t(0);
  std::vector<Slot> slots;
  uint64_t mask = 0;
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  size_t home(uint64_t k) const { return size_t((k * 0x9E3779B97F4A7C15ull) >> 20) & mask; }
  explicit MergeTable(const std::vector<Merge>& merges) {
    size_t cap = 16;
    while (cap < merges.size() * 2) cap *= 2;
    slots.resize(cap);
    mask = cap - 1;
    for (size_t r = 0; r < merges.size(); ++r) {
      uint64_t k = key(merges[r].left, merges[r].right);
      size_t s = home(k);
      while (slots[s].key != kEmpty && slots[s].key != k) s = (s + 1) & mask;
      // A pair listed twice keeps its last rank, as HF's map-building does.
      slots[s] = {k, int32_t(r), merges[r].merged};
    }
  }
  const Slot* find(int32_t a, int32_t b) const {
    uint64_t k = key(a, b);
    for (size_t s = home(k);; s = (s + 1) & mask) {
      if (slots[s].key == k) return &slots[s];
      if (slots[s].key == kEmpty) return nullptr;
    }
  }
};

// The word cache is per thread: one shared map behind a mutex made `prepare` slower on two threads
// than on one (measured 0.75×). Caches are keyed by a model id, never by address, so a new model
// allocated where an old one lived cannot read the old one's entries.
struct BpeModel::Cache {
  static constexpr size_t kMaxWordBytes = 256;  // longer words rarely repeat
  static constexpr size_t kMaxEntries = 1 << 18;
  uint64_t id;
};

namespace {
std::atomic<uint64_t> g_next_model_id{1};
using WordMap = std::unordered_map<std::string, std::vector<int32_t>, SvHash, std::equal_to<>>;
WordMap& thread_word_cache(uint64_t model_id) {
  thread_local std::unordered_map<uint64_t, WordMap> caches;
  return caches[model_id];
}
}  // namespace

BpeModel::BpeModel() : cache_(std::make_unique<Cache>(Cache{g_next_model_id.fetch_add(1)})) {}
BpeModel::~BpeModel() = default;

void BpeModel::index() {
  table_ = std::make_unique<MergeTable>(merges);
  unit_ids_.fill(-1);
  fallback_ids_.fill(-1);
  static const char* kHex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    std::string unit;
    if (byte_level) {
      utf8_append(unit, byte_to_char(uint8_t(b)));
    } else if (b < 0x80) {
      unit = std::string(1, char(b));
    }
    if (auto it = ids.find(unit); !unit.empty() && it != ids.end()) unit_ids_[b] = it->second;
    std::string fb = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
    if (auto it = ids.find(fb); it != ids.end()) fallback_ids_[b] = it->second;
  }
  // A merge across the point before a "▁" that follows some other character would make a piece
  // with a "▁" after a non-"▁" character. When the vocab has no such piece (Llama and Mistral
  // do not), cutting there gives HF's result exactly and lets the word cache work.
  metaspace_cuts_safe_ = !byte_level;
  for (const auto& [piece, id] : ids) {
    size_t lead = 0;
    while (piece.compare(lead, kMeta.size(), kMeta) == 0) lead += kMeta.size();
    if (piece.find(kMeta, lead) != std::string::npos) metaspace_cuts_safe_ = false;
  }
}

void BpeModel::encode_unsplit(std::string_view text, std::vector<int32_t>& out) const {
  if (!metaspace_cuts_safe_) return encode_word(text, out);
  size_t begin = 0;
  for (size_t i = text.find(kMeta); i != std::string_view::npos; i = text.find(kMeta, i + kMeta.size())) {
    bool after_meta = i >= kMeta.size() && text.compare(i - kMeta.size(), kMeta.size(), kMeta) == 0;
    if (i > begin && !after_meta) {
      encode_word(text.substr(begin, i - begin), out);
      begin = i;
    }
  }
  encode_word(text.substr(begin), out);
}

// Characters (bytes for byte-level) to ids. A unit missing from the vocab becomes its UTF-8 bytes
// as <0xNN> tokens under byte_fallback, else the unk token (runs fused under fuse_unk). As in HF,
// a pending unk is only emitted at the next known unit or the end of the word.
void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& syms) const {
  int32_t pending_unk = -1;
  char32_t cp;
  for (size_t i = 0; i < word.size();) {
    size_t len = 1;
    int32_t id = -1;
    if (byte_level || uint8_t(word[i]) < 0x80) {
      id = unit_ids_[uint8_t(word[i])];
    } else {
      int n = utf8_decode(word, i, cp);
      len = n > 0 ? size_t(n) : 1;
      if (auto it = ids.find(word.substr(i, len)); it != ids.end()) id = it->second;
    }
    std::string_view unit = word.substr(i, len);
    i += len;
    if (id >= 0) {
      if (pending_unk >= 0) syms.push_back(pending_unk);
      pending_unk = -1;
      syms.push_back(id);
      continue;
    }
    if (byte_fallback) {
      bool all = true;
      for (char b : unit) all = all && fallback_ids_[uint8_t(b)] >= 0;
      if (all) {
        for (char b : unit) syms.push_back(fallback_ids_[uint8_t(b)]);
        continue;
      }
    }
    if (unk_id < 0) {
      char name[16];
      std::snprintf(name, sizeof name, "U+%04X", utf8_decode(unit, 0, cp) > 0 ? unsigned(cp) : 0xFFFDu);
      fail(std::string("tokenizer: ") + name + " is not in the vocabulary and the model has no unk_token");
    }
    if (pending_unk >= 0 && !fuse_unk) syms.push_back(pending_unk);
    pending_unk = unk_id;
  }
  if (pending_unk >= 0) syms.push_back(pending_unk);
}

// A min-heap of candidate pairs keyed (rank, position of the left symbol), the order HF uses.
// Entries go stale when a neighbour merges; they are checked against the live symbols on pop.
void BpeModel::apply_merges(std::vector<int32_t>& syms) const {
  const int32_t n = int32_t(syms.size());
  if (n < 2) return;
  struct Cand {
    int32_t rank, pos, left, right, merged;
    bool operator<(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<int32_t> next(static_cast<size_t>(n)), prev(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    next[size_t(i)] = i + 1 < n ? i + 1 : -1;
    prev[size_t(i)] = i - 1;
  }
  std::priority_queue<Cand> heap;
  auto consider = [&](int32_t pos) {
    if (pos < 0) return;
    int32_t nx = next[size_t(pos)];
    if (nx < 0) return;
    if (const auto* m = table_->find(syms[size_t(pos)], syms[size_t(nx)]))
      heap.push({m->rank, pos, syms[size_t(pos)], syms[size_t(nx)], m->merged});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int32_t nx = next[size_t(c.pos)];
    if (syms[size_t(c.pos)] != c.left || nx < 0 || syms[size_t(nx)] != c.right) continue;
    syms[size_t(c.pos)] = c.merged;
    syms[size_t(nx)] = -1;  // dead
    next[size_t(c.pos)] = next[size_t(nx)];
    if (next[size_t(nx)] >= 0) prev[size_t(next[size_t(nx)])] = c.pos;
    consider(prev[size_t(c.pos)]);
    consider(c.pos);
  }
  size_t w = 0;
  for (int32_t i = 0; i >= 0; i = next[size_t(i)]) syms[w++] = syms[size_t(i)];
  syms.resize(w);
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  const bool cacheable = word.size() <= Cache::kMaxWordBytes;
  WordMap& cache = thread_word_cache(cache_->id);
  if (cacheable) {
    if (auto it = cache.find(word); it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> syms;
  syms.reserve(word.size());
  if (ignore_merges) {  // a word that is itself a vocab entry skips the merges
    std::string as_piece;
    if (byte_level) {
      for (char b : word) utf8_append(as_piece, byte_to_char(uint8_t(b)));
    } else {
      as_piece = std::string(word);
    }
    if (auto it = ids.find(as_piece); it != ids.end()) syms.push_back(it->second);
  }
  if (syms.empty()) {
    initial_symbols(word, syms);
    apply_merges(syms);
  }
  out.insert(out.end(), syms.begin(), syms.end());
  if (cacheable) {
    if (cache.size() >= Cache::kMaxEntries) cache.clear();
    cache.emplace(std::string(word), std::move(syms));
  }
}

}  // namespace anetrain::hf
