// Small UTF-8 helpers shared by the tokenizers and data preparation.
#pragma once
#include <cstddef>
#include <cstdint>

namespace anetrain {

// Length of the sequence a lead byte starts (1 for ASCII and for stray continuation bytes).
inline size_t utf8_len(char lead) {
  const uint8_t c = uint8_t(lead);
  return c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
}

// Byte offset of the first invalid UTF-8 sequence (overlongs, surrogates and > U+10FFFF are
// invalid), or size_t(-1) when the whole buffer is valid.
size_t utf8_invalid_at(const char* s, size_t n);

}  // namespace anetrain
