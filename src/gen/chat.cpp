#include "gen/chat.h"

#include "tokenizer/chatml.h"

namespace anetrain {

std::string chatml_prompt(const std::string& system, const std::string& user) {
  std::string s;
  if (!system.empty()) s += chatml_turn("system", system);
  s += chatml_turn("user", user) + chatml_open("assistant");
  return s;
}

}  // namespace anetrain
