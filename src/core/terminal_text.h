// Text from files, telemetry and the command line on its way to a terminal. A terminal obeys
// control sequences wherever they appear, so a model name, tensor name or file name holding
// ESC ] 0 ; … BEL (retitle), ESC [ 2 J (clear) or a DCS string would act instead of being read.
// terminal_safe() keeps the text readable and makes every such byte visible instead:
//   C0 controls and DEL        → \x1b, \x07, \x7f … (newline and tab kept only when asked)
//   C1 controls U+0080–U+009F  → \u009b … (many terminals take U+009B as CSI, like ESC [)
//   bytes that are not UTF-8   → \xff … (each byte; a terminal may decode them as C1 controls)
// Everything else, including any other UTF-8 text, passes unchanged.
#pragma once
#include <string>
#include <string_view>

namespace anetrain {

enum class LineBreaks { keep, escape };

std::string terminal_safe(std::string_view text, LineBreaks line_breaks = LineBreaks::keep);

}  // namespace anetrain
