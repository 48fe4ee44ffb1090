// terminal_safe(): what reaches a terminal from a file or telemetry carries no control sequence
// (C0, DEL, C1, bytes a terminal could decode as C1), yet stays readable — ordinary text and
// UTF-8 pass untouched, and each escaped byte shows which byte it was.
#include <gtest/gtest.h>

#include <string>

#include "core/terminal_text.h"

namespace anetrain {
namespace {

// No byte a terminal acts on: C0 (except the kept line breaks), DEL, or the UTF-8 of U+0080–U+009F.
bool inert(const std::string& s, bool breaks_allowed) {
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0x7F) return false;
    if (c < 0x20 && !(breaks_allowed && (c == '\n' || c == '\t'))) return false;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9F) return false;
  }
  return true;
}

TEST(TerminalText, EscapesTheSequencesThatWouldRetitleOrClearTheTerminal) {
  EXPECT_EQ(terminal_safe("a\x1b]0;pwned\x07z"), "a\\x1b]0;pwned\\x07z");
  EXPECT_EQ(terminal_safe("\x1b[2J\x1bP1$r\x1b\\"), "\\x1b[2J\\x1bP1$r\\x1b\\");  // CSI, DCS … ST
  EXPECT_EQ(terminal_safe(std::string("nul\0del\x7f", 8)), "nul\\x00del\\x7f");
  EXPECT_EQ(terminal_safe("cr\rbs\b"), "cr\\x0dbs\\x08");
}

TEST(TerminalText, EscapesC1ControlsAndBytesThatAreNotUtf8) {
  EXPECT_EQ(terminal_safe("\xc2\x9b" "2J"), "\\u009b2J");  // U+009B: CSI in one code point
  EXPECT_EQ(terminal_safe("\xc2\x80\xc2\x9f"), "\\u0080\\u009f");
  EXPECT_EQ(terminal_safe("\x9b" "2J"), "\\x9b2J");  // a lone C1 byte, as an 8-bit terminal would read it
  EXPECT_EQ(terminal_safe("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(terminal_safe("\xc0\xaf"), "\\xc0\\xaf");          // overlong '/'
  EXPECT_EQ(terminal_safe("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a UTF-16 surrogate
  EXPECT_EQ(terminal_safe("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
  EXPECT_EQ(terminal_safe("ok\xe2\x82"), "ok\\xe2\\x82");      // cut off at the end
  EXPECT_EQ(terminal_safe("\xe2\x82\x1b"), "\\xe2\\x82\\x1b");   // cut off by a control
}

TEST(TerminalText, KeepsTextAndUtf8AndByDefaultLineBreaks) {
  const std::string text = "loss 2.5 — ünïcödé ● ⠿ 日本 🙂 \\x1b stays as typed\n\tnext";
  EXPECT_EQ(terminal_safe(text), text);
  EXPECT_EQ(terminal_safe("\xc2\xa0nbsp"), "\xc2\xa0nbsp");  // U+00A0 is past the C1 block
  EXPECT_EQ(terminal_safe("a\nb\tc", LineBreaks::escape), "a\\x0ab\\x09c");
  EXPECT_EQ(terminal_safe(""), "");
}

TEST(TerminalText, NoInputLeavesAControlByteBehind) {
  // Every one- and two-byte string, and each byte after a three-byte lead: nothing raw survives.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string s{char(a), char(b)};
      ASSERT_TRUE(inert(terminal_safe(s), true)) << a << " " << b;
      ASSERT_TRUE(inert(terminal_safe(s, LineBreaks::escape), false)) << a << " " << b;
      const std::string t{char(0xE2), char(a), char(b)};
      ASSERT_TRUE(inert(terminal_safe(t), true)) << a << " " << b;
    }
  }
}

}  // namespace
}  // namespace anetrain
