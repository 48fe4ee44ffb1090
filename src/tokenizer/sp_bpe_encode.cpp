// Encoding for llama2.c tokenizers, written to agree id for id with sentencepiece's BPE model on
// the Llama 2 vocabulary (checked by tests/tokenizer/sp_parity.py). Cost is O(n log n) in the
// longest run of text between spaces, and linear in the input otherwise.
//
// Where this differs from llama2.c's run.c, it is because sentencepiece does it this way:
//  * malformed UTF-8 becomes U+FFFD, one per bad byte (run.c falls back to the raw bytes);
//  * a literal '▁' (U+2581) in the input is a space, since sentencepiece escapes spaces as '▁';
//  * only ordinary pieces take part in merges: <unk>, BOS/EOS and "<0xNN>" never do, even when
//    the input spells them out;
//  * a character with no piece of its own can still be merged into a longer piece;
//    the byte fallback applies only to what is left at the end.
#include <algorithm>

#include "tokenizer/sp_bpe.h"

namespace anetrain {

struct Llama2cTokenizer::Symbol {
  uint32_t start, len;  // bytes of the chunk; len 0 once merged into the symbol on its left
  int32_t prev, next;   // neighbours still alive, −1 at the ends
  int32_t id;           // the piece this symbol is, −1 for a character with no piece
};

// A merge that was possible when queued; it may be stale by the time it is popped.
struct Llama2cTokenizer::Candidate {
  float score;
  int32_t left, right;
  uint32_t len;
  int32_t id;
};

namespace {

bool trail(uint8_t b) { return (b & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 character at the front of s, or 0 when it is malformed:
// overlong forms, surrogates, values past U+10FFFF and cut-off sequences all count as malformed.
size_t valid_utf8_len(const uint8_t* s, size_t n) {
  const uint8_t b0 = s[0];
  if (b0 < 0x80) return 1;
  if ((b0 & 0xE0) == 0xC0) {
    if (n < 2 || !trail(s[1])) return 0;
    const uint32_t cp = (uint32_t(b0 & 0x1F) << 6) | (s[1] & 0x3F);
    return cp >= 0x80 ? 2 : 0;
  }
  if ((b0 & 0xF0) == 0xE0) {
    if (n < 3 || !trail(s[1]) || !trail(s[2])) return 0;
    const uint32_t cp = (uint32_t(b0 & 0x0F) << 12) | (uint32_t(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    return cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF) ? 3 : 0;
  }
  if ((b0 & 0xF8) == 0xF0) {
    if (n < 4 || !trail(s[1]) || !trail(s[2]) || !trail(s[3])) return 0;
    const uint32_t cp = (uint32_t(b0 & 0x07) << 18) | (uint32_t(s[1] & 0x3F) << 12) |
                        (uint32_t(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return cp >= 0x10000 && cp <= 0x10FFFF ? 4 : 0;
  }
  return 0;
}

// After normalize() the text is well formed, so the lead byte alone gives the length.
uint32_t char_len(uint8_t lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

// Max-heap order: best score first; on equal scores the leftmost pair, as sentencepiece does.
// A functor rather than a function pointer so the heap operations inline it.
struct Worse {
  bool operator()(const auto& a, const auto& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

std::string Llama2cTokenizer::normalize(std::string_view text) {
  std::string out;
  if (text.empty()) return out;  // no dummy prefix for nothing: "" encodes to no ids
  out.reserve(text.size() + 1);
  out.push_back(' ');
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) {  // ASCII runs are copied as they are
      size_t j = i + 1;
      while (j < n && s[j] < 0x80) ++j;
      out.append(text.data() + i, j - i);
      i = j;
      continue;
    }
    const size_t len = valid_utf8_len(s + i, n - i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      if (len == 3 && s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) out.push_back(' ');
      else out.append(text.data() + i, len);
      i += len;
    }
  }
  return out;
}

void Llama2cTokenizer::encode_chunk(std::string_view chunk, std::vector<Symbol>& syms,
                                    std::vector<Candidate>& heap, std::vector<int32_t>& out) const {
  syms.clear();
  heap.clear();
  for (uint32_t i = 0; i < chunk.size();) {
    const uint32_t len = std::min<uint32_t>(char_len(uint8_t(chunk[i])), uint32_t(chunk.size()) - i);
    const int32_t k = int32_t(syms.size());
    const int32_t id = len == 1 ? ascii_ids_[uint8_t(chunk[i])] : find_normal(chunk.substr(i, len));
    syms.push_back({i, len, k - 1, k + 1, id});
    i += len;
  }
  if (syms.empty()) return;
  syms.back().next = -1;

  auto queue = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t len = syms[size_t(l)].len + syms[size_t(r)].len;
    const int32_t id = find_normal(chunk.substr(syms[size_t(l)].start, len));
    if (id < 0) return;
    heap.push_back({scores_[size_t(id)], l, r, len, id});
    std::push_heap(heap.begin(), heap.end(), Worse{});
  };
  for (size_t k = 0; k + 1 < syms.size(); ++k) queue(int32_t(k), int32_t(k + 1));

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), Worse{});
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& l = syms[size_t(c.left)];
    Symbol& r = syms[size_t(c.right)];
    // Stale when either side has since been merged with something else.
    if (l.len == 0 || r.len == 0 || l.next != c.right || l.len + r.len != c.len) continue;
    l.len = c.len;
    l.id = c.id;
    l.next = r.next;
    r.len = 0;
    if (l.next >= 0) syms[size_t(l.next)].prev = c.left;
    queue(l.prev, c.left);
    queue(c.left, l.next);
  }

  for (int32_t k = 0; k >= 0; k = syms[size_t(k)].next) {
    const Symbol& s = syms[size_t(k)];
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    for (uint32_t b = 0; b < s.len; ++b) {
      const int32_t id = byte_ids_[uint8_t(chunk[s.start + b])];
      if (id >= 0) out.push_back(id);
      else if (unk_ >= 0) out.push_back(unk_);
    }
  }
}

std::vector<int32_t> Llama2cTokenizer::encode(std::string_view text, bool add_bos, bool add_eos) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  const std::string norm = normalize(text);
  std::vector<Symbol> syms;
  std::vector<Candidate> heap;
  const std::string_view all(norm);
  size_t begin = 0;
  if (chunkable_) {
    // A chunk starts wherever a space follows a non-space: no piece can straddle that point.
    for (size_t i = 1; i < all.size(); ++i) {
      if (all[i] == ' ' && all[i - 1] != ' ') {
        encode_chunk(all.substr(begin, i - begin), syms, heap, out);
        begin = i;
      }
    }
  }
  encode_chunk(all.substr(begin), syms, heap, out);
  if (add_eos && eos_ >= 0) out.push_back(eos_);
  return out;
}

}  // namespace anetrain
