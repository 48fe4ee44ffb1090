// `anetrain prepare --chat`: conversations → token shards with loss masks (data/loss_mask.h).
// Input is JSON Lines, one conversation a line, in either common form:
//   OpenAI:   {"messages": [{"role": "system|user|assistant", "content": "..."}, ...]}
//   ShareGPT: {"conversations": [{"from": "system|human|gpt", "value": "..."}, ...]}
// Each is rendered with a chat template and only the assistant's replies (their text and the
// end-of-turn token) count toward the loss, unless train_on_prompt.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/prepare.h"
#include "tokenizer/tokenizer.h"

namespace anetrain {

enum class ChatRole { system, user, assistant };

struct ChatMessage {
  ChatRole role;
  std::string text;
};

struct Conversation {
  std::vector<ChatMessage> messages;
  std::string source;  // "path:line", for messages about it
};

enum class ChatTemplate { chatml, llama2, plain };
const char* chat_template_name(ChatTemplate t);
ChatTemplate parse_chat_template(const std::string& name);  // chatml | llama2 | plain

// Parses one JSONL line; throws Error with the reason alone (the caller adds file and line).
Conversation parse_conversation(std::string_view line);

// Reads every conversation of a JSONL file. A malformed line is an error "path:line: why" or,
// with skip_bad, skipped and counted in `skipped` (with its reason in `skip_notes`).
std::vector<Conversation> read_conversations(const std::string& path, bool skip_bad, uint64_t& skipped,
                                             std::vector<std::string>& skip_notes);

// The template for `auto`: tokenizer_config.json's chat_template next to the tokenizer file
// (ChatML when it holds <|im_start|>, llama2 when [INST]), else the tokenizer's own special tokens
// (<|im_start|> and <|im_end|>: ChatML), else plain. `why` says what decided it.
ChatTemplate detect_chat_template(const std::string& tokenizer_path, const Tokenizer& tok, std::string& why);

// Whether a conversation can be rendered with `t` (llama2: an optional system message first, then
// user and assistant in turn); throws Error with the reason.
void check_renderable(const Conversation& c, ChatTemplate t, const Tokenizer& tok);

// ids and, per id, whether it counts as a target (1) — appended to `ids` and `mask`.
void render_conversation(const Conversation& c, ChatTemplate t, const Tokenizer& tok, bool train_on_prompt,
                         std::vector<int32_t>& ids, std::vector<uint8_t>& mask);

// What a model trained on `t`-rendered conversations saw before a reply to `c` (ending with a user's
// message): `c` rendered with a reply, cut where the reply's first counted id stood — so `generate
// --chat` prompts exactly as `prepare --chat` trained (ChatML: with Qwen3's empty reasoning block).
std::vector<int32_t> render_reply_prompt(const Conversation& c, ChatTemplate t, const Tokenizer& tok);

struct ChatPrepareOptions {
  ChatTemplate chat_template = ChatTemplate::chatml;
  bool train_on_prompt = false;
  bool skip_bad = false;
};

struct ChatPrepareSummary {
  PrepareSummary shards;
  uint64_t skipped = 0, counted_tokens = 0;
  std::vector<std::string> skip_notes;  // "path:line: why" of each skipped line
};

ChatPrepareSummary prepare_chat(const std::vector<std::string>& inputs, const Tokenizer& tok,
                                const PrepareOptions& opt, const ChatPrepareOptions& chat);

}  // namespace anetrain
