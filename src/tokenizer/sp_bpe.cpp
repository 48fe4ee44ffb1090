// llama2.c tokenizer.bin: reading (every length checked against the file before use), writing,
// decoding and identity. Decoding follows sentencepiece's rules for what BOS/EOS, <unk> and the
// dummy-prefix space turn into; the merge algorithm lives in sp_bpe_encode.cpp.
#include "tokenizer/sp_bpe.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"

namespace anetrain {

namespace {

// llama2.c sizes its merge buffer from this value, so a huge one is a corrupt file, not a vocab.
constexpr int32_t kMaxTokenLengthLimit = 1 << 16;
// What sentencepiece prints for <unk> (its unk_surface default).
constexpr std::string_view kUnkSurface = " \xE2\x81\x87 ";

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // sentencepiece writes upper case only; anything else is an ordinary piece
}

// "<0xNN>" → NN, else −1.
int byte_piece_value(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  const int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

Llama2cTokenizer::Llama2cTokenizer(std::vector<std::string> pieces, std::vector<float> scores,
                                   int max_token_length)
    : pieces_(std::move(pieces)), scores_(std::move(scores)), max_token_length_(max_token_length) {
  if (pieces_.size() != scores_.size())
    fail("llama2.c tokenizer: " + std::to_string(pieces_.size()) + " pieces but " +
         std::to_string(scores_.size()) + " scores");
  const size_t n = pieces_.size();
  roles_.assign(n, Role::normal);
  byte_ids_.fill(-1);
  if (n > 0) roles_[0] = Role::unknown, unk_ = 0;
  if (n > 1) roles_[1] = Role::control, bos_ = 1;
  if (n > 2) roles_[2] = Role::control, eos_ = 2;
  chunkable_ = true;
  size_t slots = 16;
  while (slots < 2 * n) slots *= 2;  // at most half full, so probe runs stay short
  normal_.assign(slots, Slot{0, -1});
  normal_mask_ = slots - 1;
  all_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string_view p = pieces_[i];
    const int32_t id = int32_t(i);
    all_.emplace(p, id);  // emplace keeps the first id when a piece repeats
    if (roles_[i] != Role::normal) continue;
    if (!std::isfinite(scores_[i])) fail("llama2.c tokenizer: piece " + std::to_string(i) + " has a non-finite score");
    if (const int b = byte_piece_value(p); b >= 0) {
      roles_[i] = Role::byte;
      if (byte_ids_[size_t(b)] < 0) byte_ids_[size_t(b)] = id;
      continue;
    }
    if (p.empty()) continue;  // can never be the concatenation of two symbols
    insert_normal(p, id);
    longest_normal_ = std::max(longest_normal_, p.size());
    const size_t text = p.find_first_not_of(' ');
    if (text != std::string_view::npos && p.find(' ', text) != std::string_view::npos) chunkable_ = false;
  }
  for (int c = 0; c < 128; ++c) {
    const char ch = char(c);
    ascii_ids_[size_t(c)] = find_normal(std::string_view(&ch, 1));
  }
}

uint64_t Llama2cTokenizer::hash(std::string_view s) {
  // Eight bytes per multiply; pieces are short, so this is a handful of instructions.
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xff51afd7ed558ccdull);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
  }
  if (i < s.size()) {
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
  }
  return h * 0x94d049bb133111ebull;
}

void Llama2cTokenizer::insert_normal(std::string_view s, int32_t id) {
  const uint64_t h = hash(s);
  for (uint64_t i = h & normal_mask_;; i = (i + 1) & normal_mask_) {
    Slot& slot = normal_[i];
    if (slot.id < 0) {
      slot = Slot{uint32_t(h >> 32), id};
      return;
    }
    if (slot.tag == uint32_t(h >> 32) && pieces_[size_t(slot.id)] == s) return;  // first id wins
  }
}

int32_t Llama2cTokenizer::find_normal(std::string_view s) const {
  if (s.size() > longest_normal_) return -1;
  const uint64_t h = hash(s);
  const uint32_t tag = uint32_t(h >> 32);
  for (uint64_t i = h & normal_mask_;; i = (i + 1) & normal_mask_) {
    const Slot slot = normal_[i];
    if (slot.id < 0) return -1;
    if (slot.tag == tag && pieces_[size_t(slot.id)] == s) return slot.id;
  }
}

void Llama2cTokenizer::check_id(int32_t id) const {
  if (id < 0 || size_t(id) >= pieces_.size())
    fail("token id " + std::to_string(id) + " is outside the tokenizer's vocabulary [0, " +
         std::to_string(pieces_.size()) + ")");
}

std::string_view Llama2cTokenizer::surface(int32_t id, bool at_start, char* byte_buf) const {
  const std::string_view p = pieces_[size_t(id)];
  switch (roles_[size_t(id)]) {
    case Role::control: return {};
    case Role::unknown: return kUnkSurface;
    case Role::byte: *byte_buf = char(byte_piece_value(p)); return {byte_buf, 1};
    case Role::normal: break;
  }
  return at_start && !p.empty() && p[0] == ' ' ? p.substr(1) : p;
}

std::string Llama2cTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  bool at_start = true;  // sentencepiece strips the prefix space of the first non-control piece only
  char b;
  for (int32_t id : ids) {
    check_id(id);
    out += surface(id, at_start, &b);
    if (roles_[size_t(id)] != Role::control) at_start = false;
  }
  return out;
}

std::string Llama2cTokenizer::decode_step(int32_t prev, int32_t id) const {
  check_id(id);
  char b;
  // llama2.c strips the leading space after BOS; prev < 0 (no previous token) is the same start.
  return std::string(surface(id, prev < 0 || (prev == bos_ && bos_ >= 0), &b));
}

std::string Llama2cTokenizer::piece(int32_t id) const {
  check_id(id);
  return pieces_[size_t(id)];
}

std::optional<int32_t> Llama2cTokenizer::piece_id(std::string_view piece) const {
  auto it = all_.find(piece);
  if (it == all_.end()) return std::nullopt;
  return it->second;
}

bool Llama2cTokenizer::is_special(int32_t id) const {
  if (id < 0 || size_t(id) >= roles_.size()) return false;
  return roles_[size_t(id)] == Role::unknown || roles_[size_t(id)] == Role::control;
}

uint64_t Llama2cTokenizer::fingerprint() const {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  };
  const std::string k = kind();
  mix(k.data(), k.size());
  for (size_t i = 0; i < pieces_.size(); ++i) {
    // Length-prefixed so that ("ab","c") and ("a","bc") cannot collide by construction.
    const uint32_t len = uint32_t(pieces_[i].size());
    uint32_t bits;
    std::memcpy(&bits, &scores_[i], 4);
    mix(&len, 4);
    mix(pieces_[i].data(), len);
    mix(&bits, 4);
  }
  return h;
}

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int vocab_size) {
  if (vocab_size < 0) fail(path + ": vocab size " + std::to_string(vocab_size) + " is negative");
  MappedFile f(path);
  f.require(0, 4, "llama2.c tokenizer header (int32 max_token_length)");
  int32_t mtl;
  std::memcpy(&mtl, f.data(), 4);
  if (mtl < 1 || mtl > kMaxTokenLengthLimit)
    fail_at(path, 0, "max_token_length " + std::to_string(mtl) + " is outside [1, " +
                         std::to_string(kMaxTokenLengthLimit) + "] (not a llama2.c tokenizer.bin?)");
  std::vector<std::string> pieces;
  std::vector<float> scores;
  // Every entry takes at least 8 bytes, so the file size bounds what a hostile count can reserve.
  const size_t cap = std::min<size_t>(vocab_size > 0 ? size_t(vocab_size) : SIZE_MAX, f.size() / 8);
  pieces.reserve(cap);
  scores.reserve(cap);
  uint64_t off = 4;
  while (vocab_size > 0 ? pieces.size() < size_t(vocab_size) : off < f.size()) {
    const std::string tok = "token " + std::to_string(pieces.size());
    f.require(off, 8, tok + " header (f32 score, int32 length)");
    float score;
    int32_t len;
    std::memcpy(&score, f.data() + off, 4);
    std::memcpy(&len, f.data() + off + 4, 4);
    if (!std::isfinite(score)) fail_at(path, off, tok + " has a non-finite score");
    if (len < 0) fail_at(path, off + 4, tok + " has negative length " + std::to_string(len));
    if (len > mtl)
      fail_at(path, off + 4, tok + " is " + std::to_string(len) + " bytes, longer than the header's max_token_length " +
                                 std::to_string(mtl));
    f.require(off + 8, uint64_t(len), tok + " bytes");
    pieces.emplace_back(reinterpret_cast<const char*>(f.data() + off + 8), size_t(len));
    scores.push_back(score);
    off += 8 + uint64_t(len);
  }
  if (off != f.size())
    fail_at(path, off, "file continues for " + std::to_string(f.size() - off) + " bytes after the " +
                           std::to_string(vocab_size) +
                           " tokens asked for (tokenizer does not match the model's vocab size?)");
  if (pieces.size() < 3)
    fail_at(path, off, "only " + std::to_string(pieces.size()) + " tokens; llama2.c needs at least <unk>, BOS, EOS");
  return std::make_unique<Llama2cTokenizer>(std::move(pieces), std::move(scores), int(mtl));
}

void write_llama2c_tokenizer(const std::string& path, const std::vector<std::string>& pieces,
                             const std::vector<float>& scores) {
  if (pieces.size() != scores.size())
    fail(path + ": cannot write tokenizer: " + std::to_string(pieces.size()) + " pieces but " +
         std::to_string(scores.size()) + " scores");
  if (pieces.size() < 3) fail(path + ": cannot write tokenizer: needs at least <unk>, BOS and EOS");
  size_t longest = 1, total = 4;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (!std::isfinite(scores[i])) fail(path + ": cannot write tokenizer: piece " + std::to_string(i) + " score is not finite");
    longest = std::max(longest, pieces[i].size());
    total += 8 + pieces[i].size();
  }
  if (longest > size_t(kMaxTokenLengthLimit))
    fail(path + ": cannot write tokenizer: a piece is " + std::to_string(longest) + " bytes long");
  std::string buf;
  buf.reserve(total);
  auto put = [&buf](const void* p, size_t n) { buf.append(static_cast<const char*>(p), n); };
  const int32_t mtl = int32_t(longest);
  put(&mtl, 4);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const int32_t len = int32_t(pieces[i].size());
    put(&scores[i], 4);
    put(&len, 4);
    put(pieces[i].data(), pieces[i].size());
  }
  write_file_atomic(path, buf.data(), buf.size());
}

}  // namespace anetrain
