// ChatML, the turn layout of Qwen3's chat template (tokenizer_config.json): each turn is
// "<|im_start|>ROLE\nTEXT<|im_end|>\n". `generate --chat` builds its prompt and `prepare --chat`
// its training conversations from these pieces, so the two can never disagree.
#pragma once
#include <string>
#include <string_view>

namespace anetrain {

inline constexpr std::string_view kChatmlStart = "<|im_start|>";
inline constexpr std::string_view kChatmlEnd = "<|im_end|>";
// Qwen3 marks a reply given without thinking by an empty reasoning block at its start.
inline constexpr std::string_view kChatmlEmptyThink = "<think>\n\n</think>\n\n";

// "<|im_start|>ROLE\n": what opens a turn, and what cues a reply.
inline std::string chatml_open(std::string_view role) {
  std::string s(kChatmlStart);
  s.append(role).push_back('\n');
  return s;
}

// A whole turn.
inline std::string chatml_turn(std::string_view role, std::string_view text) {
  std::string s = chatml_open(role);
  s.append(text).append(kChatmlEnd).push_back('\n');
  return s;
}

}  // namespace anetrain
