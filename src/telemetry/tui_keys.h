// The keys of `dashboard --tui`, decoded from the bytes a terminal sends in raw mode: letters as
// themselves, the arrows and PgUp/PgDn/Home/End as the escape sequences xterm, tmux and the Linux
// console send (CSI and SS3 forms). Anything else is `other` and ignored.
#pragma once
#include <string>
#include <vector>

namespace anetrain {

enum class TuiKey { up, down, page_up, page_down, home, end, interrupt, letter, other };

struct KeyPress {
  TuiKey key = TuiKey::other;
  char letter = 0;  // lower-cased, for TuiKey::letter
};

// All the key presses in `bytes` (what one read returned); an escape sequence cut by the end of
// the read is dropped (a terminal writes each one whole).
std::vector<KeyPress> decode_keys(const std::string& bytes);

}  // namespace anetrain
