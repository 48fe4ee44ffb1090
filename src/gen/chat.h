// Chat formatting. Qwen3's tokenizer_config.json template is ChatML: each turn is
// "<|im_start|>ROLE\nTEXT<|im_end|>\n", and the reply is cued with "<|im_start|>assistant\n".
// Rendering that one format directly avoids embedding a Jinja interpreter.
#pragma once
#include <string>

namespace anetrain {

std::string chatml_prompt(const std::string& system, const std::string& user);

}  // namespace anetrain
