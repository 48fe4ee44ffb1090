// Reading conversations: the OpenAI and ShareGPT JSONL forms, every malformed line named.
#include "data/chat.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/utf8.h"

namespace anetrain {

namespace {

ChatRole role_named(const std::string& name, bool sharegpt) {
  if (name == "system") return ChatRole::system;
  if (name == "user" || (sharegpt && name == "human")) return ChatRole::user;
  if (name == "assistant" || (sharegpt && name == "gpt")) return ChatRole::assistant;
  fail("unknown role \"" + name + "\" (expected " +
       std::string(sharegpt ? "system, human or gpt" : "system, user or assistant") + ")");
}

}  // namespace

Conversation parse_conversation(std::string_view line) {
  nlohmann::json v;
  try {
    v = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("malformed JSON: ") + e.what());
  }
  if (!v.is_object()) fail("a conversation must be a JSON object with \"messages\" or \"conversations\"");
  const bool sharegpt = !v.contains("messages") && v.contains("conversations");
  const char* list_key = sharegpt ? "conversations" : "messages";
  const char* role_key = sharegpt ? "from" : "role";
  const char* text_key = sharegpt ? "value" : "content";
  if (!v.contains(list_key)) fail("no \"messages\" (OpenAI form) or \"conversations\" (ShareGPT form) list");
  const nlohmann::json& list = v[list_key];
  if (!list.is_array() || list.empty()) fail(std::string("\"") + list_key + "\" must be a non-empty list");
  Conversation c;
  bool any_reply = false;
  for (size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& msg = list[i];
    const std::string where = std::string(list_key) + "[" + std::to_string(i) + "]: ";
    if (!msg.is_object()) fail(where + "not an object");
    if (!msg.contains(role_key) || !msg[role_key].is_string())
      fail(where + "missing \"" + role_key + "\" string");
    if (!msg.contains(text_key) || !msg[text_key].is_string())
      fail(where + "missing \"" + text_key + "\" string");
    ChatRole role;
    try {
      role = role_named(msg[role_key].get<std::string>(), sharegpt);
    } catch (const Error& e) {
      fail(where + e.what());
    }
    any_reply |= role == ChatRole::assistant;
    c.messages.push_back({role, msg[text_key].get<std::string>()});
  }
  if (!any_reply) fail("no assistant message: nothing to train on");
  return c;
}

std::vector<Conversation> read_conversations(const std::string& path, bool skip_bad, uint64_t& skipped,
                                             std::vector<std::string>& skip_notes) {
  MappedFile f(path);
  const char* d = reinterpret_cast<const char*>(f.data());
  const size_t n = f.size();
  if (n == 0) fail(path + ": empty file");
  std::vector<Conversation> out;
  size_t start = 0, line_no = 0;
  while (start < n) {
    size_t end = start;
    while (end < n && d[end] != '\n') ++end;
    ++line_no;
    const std::string_view line(d + start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    try {
      if (size_t bad = utf8_invalid_at(line.data(), line.size()); bad != size_t(-1))
        fail("invalid UTF-8 at column " + std::to_string(bad + 1));
      Conversation c = parse_conversation(line);
      c.source = where;
      out.push_back(std::move(c));
    } catch (const Error& e) {
      if (!skip_bad) fail(where + ": " + e.what() + "\nhint: --skip-bad skips such lines and counts them");
      ++skipped;
      skip_notes.push_back(where + ": " + e.what());
    }
  }
  return out;
}

}  // namespace anetrain
