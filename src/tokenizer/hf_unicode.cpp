// UTF-8 and Unicode helpers for the HF tokenizers: strict decoding with Rust's lossy-replacement
// units, NFC (utf8proc), the character classes the split regexes use, and GPT-2's byte alphabet.
#include <utf8proc.h>

#include <cstdlib>

#include "core/error.h"
#include "tokenizer/hf_tokenizer.h"

namespace anetrain::hf {

int utf8_decode(std::string_view s, size_t i, char32_t& cp) {
  const auto byte = [&](size_t k) { return uint8_t(s[k]); };
  uint8_t b = byte(i);
  if (b < 0x80) {
    cp = b;
    return 1;
  }
  int len;
  uint8_t lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;  // overlong
    if (b == 0xED) hi = 0x9F;  // surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;  // overlong
    if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return -1;
  }
  char32_t v = b & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    if (i + k >= s.size()) return -k;
    uint8_t c = byte(i + k);
    bool ok = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return -k;
    v = (v << 6) | (c & 0x3F);
  }
  cp = v;
  return len;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

size_t utf8_first_invalid(std::string_view s) {
  char32_t cp;
  for (size_t i = 0; i < s.size();) {
    if (uint8_t(s[i]) < 0x80) {
      ++i;
      continue;
    }
    int n = utf8_decode(s, i, cp);
    if (n < 0) return i;
    i += size_t(n);
  }
  return std::string_view::npos;
}

std::string utf8_lossy(std::string_view s) {
  if (utf8_first_invalid(s) == std::string_view::npos) return std::string(s);
  std::string out;
  char32_t cp;
  for (size_t i = 0; i < s.size();) {
    int n = utf8_decode(s, i, cp);
    if (n > 0) {
      out.append(s.substr(i, size_t(n)));
      i += size_t(n);
    } else {
      out += "\xEF\xBF\xBD";
      i += size_t(-n);
    }
  }
  return out;
}

namespace {
std::string nfc_chunk(std::string_view s) {
  utf8proc_uint8_t* dst = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                    utf8proc_ssize_t(s.size()), &dst,
                                    utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) fail(std::string("NFC normalization failed: ") + utf8proc_errmsg(n));
  std::string out(reinterpret_cast<const char*>(dst), size_t(n));
  std::free(dst);
  return out;
}
}  // namespace

// An ASCII character has combining class 0 and is never the second half of a canonical
// composition, so NFC never reaches across one. Only the stretches of non-ASCII text (plus the
// ASCII character before each, which may take a combining mark) go through utf8proc; English
// prose then costs little more than a copy.
std::string nfc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0, done = 0;
  while (i < s.size()) {
    if (uint8_t(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t begin = i > done ? i - 1 : i;
    size_t end = i;
    while (end < s.size() && uint8_t(s[end]) >= 0x80) ++end;
    out.append(s.substr(done, begin - done));
    out += nfc_chunk(s.substr(begin, end - begin));
    done = i = end;
  }
  out.append(s.substr(done));
  return out;
}

namespace {
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

uint8_t classify(char32_t c) {
  uint8_t cls = 0;
  if (is_white_space(c)) cls |= kSpace;
  if (c == '\r' || c == '\n') cls |= kNewline;
  switch (utf8proc_category(utf8proc_int32_t(c))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
      cls |= kLetter | kWord;
      break;
    case UTF8PROC_CATEGORY_ND:
      cls |= kNumber | kWord;
      break;
    case UTF8PROC_CATEGORY_NL:
      cls |= kNumber | kWord;  // Nl is Alphabetic, hence \w
      break;
    case UTF8PROC_CATEGORY_NO:
      cls |= kNumber;
      break;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_PC:
      cls |= kWord;
      break;
    default:
      break;
  }
  if (c == 0x200C || c == 0x200D || (c >= 0x24B6 && c <= 0x24E9)) cls |= kWord;  // Join_Control, Ⓐ
  return cls;
}

struct Tables {
  std::array<uint8_t, 0x800> low_class{};  // classes of U+0000..U+07FF, the hot range
  std::array<char32_t, 256> byte_char{};
  std::array<int16_t, 324> char_byte{};    // the alphabet never goes past U+0143
  Tables() {
    for (char32_t c = 0; c < low_class.size(); ++c) low_class[c] = classify(c);
    char_byte.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      byte_char[b] = printable ? char32_t(b) : next++;
      char_byte[byte_char[b]] = int16_t(b);
    }
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}
}  // namespace

uint8_t char_class(char32_t cp) {
  if (cp < 0x800) return tables().low_class[cp];
  return classify(cp);
}

char32_t byte_to_char(uint8_t b) { return tables().byte_char[b]; }

int char_to_byte(char32_t cp) {
  const auto& t = tables().char_byte;
  return cp < t.size() ? t[cp] : -1;
}

}  // namespace anetrain::hf
