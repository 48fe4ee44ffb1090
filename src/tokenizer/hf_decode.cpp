// The decoder chain of tokenizer.json, step by step over the list of pieces as HF's decoders
// pass it along (some steps work per piece, ByteLevel and Fuse join them), so any order the
// file gives composes the same way it does in HF.
#include "tokenizer/hf_tokenizer.h"

namespace anetrain::hf {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size())
    out.append(s, pos, hit - pos).append(to);
  if (pos == 0) return;
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

namespace {

// A piece's bytes under the byte-level alphabet; a piece with any character outside it (an
// added token, say) stands for its own UTF-8 bytes.
std::string byte_level_bytes(const std::string& piece) {
  std::string bytes;
  char32_t cp;
  for (size_t i = 0; i < piece.size();) {
    int n = utf8_decode(piece, i, cp);
    int b = n > 0 ? char_to_byte(cp) : -1;
    if (b < 0) return piece;
    bytes += char(b);
    i += size_t(n);
  }
  return bytes;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int byte_token(const std::string& t) {  // <0xNN> → NN, else −1
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// Leading/trailing copies of `c` (one character), at most start/stop of them.
void strip(std::string& t, const std::string& c, int start, int stop) {
  if (c.empty()) return;
  size_t b = 0, e = t.size();
  for (int k = 0; k < start && e - b >= c.size() && t.compare(b, c.size(), c) == 0; ++k) b += c.size();
  for (int k = 0; k < stop && e - b >= c.size() && t.compare(e - c.size(), c.size(), c) == 0; ++k) e -= c.size();
  t = t.substr(b, e - b);
}

}  // namespace

std::string run_decoder(const std::vector<DecodeStep>& steps, std::vector<std::string> toks, bool raw,
                        bool strip_edges) {
  for (const DecodeStep& st : steps) {
    switch (st.op) {
      case DecodeStep::kByteLevel: {
        std::string bytes;
        for (const auto& t : toks) bytes += byte_level_bytes(t);
        toks.assign(1, raw ? bytes : utf8_lossy(bytes));
        break;
      }
      case DecodeStep::kReplace:
        for (auto& t : toks) replace_all(t, st.from, st.to);
        break;
      case DecodeStep::kByteFallback: {
        // Runs of <0xNN> become their bytes when those form valid UTF-8; otherwise HF emits one
        // U+FFFD per byte.
        std::vector<std::string> out;
        std::string run;
        auto flush = [&] {
          if (run.empty()) return;
          if (raw || utf8_first_invalid(run) == std::string::npos) {
            out.push_back(run);
          } else {
            for (size_t k = 0; k < run.size(); ++k) out.push_back("\xEF\xBF\xBD");
          }
          run.clear();
        };
        for (auto& t : toks) {
          int b = byte_token(t);
          if (b >= 0) {
            run += char(b);
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        toks.swap(out);
        break;
      }
      case DecodeStep::kFuse: {
        std::string all;
        for (const auto& t : toks) all += t;
        toks.assign(1, all);
        break;
      }
      case DecodeStep::kStrip:
        if (strip_edges)
          for (auto& t : toks) strip(t, st.from, st.start, st.stop);
        break;
    }
  }
  std::string text;
  for (const auto& t : toks) text += t;
  return text;
}

}  // namespace anetrain::hf
