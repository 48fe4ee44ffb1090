#include "core/terminal_text.h"

#include <cstdint>
#include <cstdio>

namespace anetrain {

namespace {

// Length of the well-formed UTF-8 sequence at s[i] (overlong forms, surrogates and code points
// past U+10FFFF are not well-formed), 0 when there is none; its code point in *cp.
size_t utf8_sequence(std::string_view s, size_t i, uint32_t* cp) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  size_t len;
  uint32_t min;
  if (b0 >= 0xC2 && b0 <= 0xDF) len = 2, min = 0x80, *cp = b0 & 0x1F;
  else if (b0 >= 0xE0 && b0 <= 0xEF) len = 3, min = 0x800, *cp = b0 & 0x0F;
  else if (b0 >= 0xF0 && b0 <= 0xF4) len = 4, min = 0x10000, *cp = b0 & 0x07;
  else return 0;
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (byte(i + k) & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
  return len;
}

void append_escape(std::string& out, const char* format, unsigned value) {
  char buf[8];
  std::snprintf(buf, sizeof buf, format, value);
  out += buf;
}

}  // namespace

std::string terminal_safe(std::string_view text, LineBreaks line_breaks) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      const bool kept_break = line_breaks == LineBreaks::keep && (c == '\n' || c == '\t');
      if ((c < 0x20 && !kept_break) || c == 0x7F) append_escape(out, "\\x%02x", c);
      else out += char(c);
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t len = utf8_sequence(text, i, &cp);
    if (len == 0) {
      append_escape(out, "\\x%02x", c);
      ++i;
    } else {
      if (cp <= 0x9F) append_escape(out, "\\u%04x", cp);
      else out.append(text.substr(i, len));
      i += len;
    }
  }
  return out;
}

}  // namespace anetrain
