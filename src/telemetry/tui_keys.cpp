#include "telemetry/tui_keys.h"

#include <cctype>

namespace anetrain {

namespace {

// The final byte of a CSI/SS3 sequence, with its numeric parameter ("5" in ESC [ 5 ~).
TuiKey from_sequence(char final, const std::string& param) {
  switch (final) {
    case 'A': return TuiKey::up;
    case 'B': return TuiKey::down;
    case 'H': return TuiKey::home;
    case 'F': return TuiKey::end;
    case '~':
      if (param == "5") return TuiKey::page_up;
      if (param == "6") return TuiKey::page_down;
      if (param == "1" || param == "7") return TuiKey::home;
      if (param == "4" || param == "8") return TuiKey::end;
      return TuiKey::other;
    default: return TuiKey::other;
  }
}

}  // namespace

std::vector<KeyPress> decode_keys(const std::string& bytes) {
  std::vector<KeyPress> keys;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c == 0x1b && i + 1 < bytes.size() && (bytes[i + 1] == '[' || bytes[i + 1] == 'O')) {
      size_t j = i + 2;
      std::string param;
      while (j < bytes.size() && (std::isdigit(static_cast<unsigned char>(bytes[j])) || bytes[j] == ';')) param += bytes[j++];
      if (j >= bytes.size()) break;  // cut short
      keys.push_back({from_sequence(bytes[j], param.substr(0, param.find(';'))), 0});
      i = j;
    } else if (c == 3) {
      keys.push_back({TuiKey::interrupt, 0});
    } else if (std::isalpha(c)) {
      keys.push_back({TuiKey::letter, char(std::tolower(c))});
    } else {
      keys.push_back({TuiKey::other, 0});
    }
  }
  return keys;
}

}  // namespace anetrain
