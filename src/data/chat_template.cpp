// Chat templates for `prepare --chat`: which one (auto detection), and a conversation rendered
// as ids with, per id, whether it counts toward the loss. Each run of text with one mask value is
// encoded on its own; the runs meet where the whole text's tokenization also splits (at special
// tokens, at a line break, or — for SentencePiece vocabularies — before a word's leading space).
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/chat.h"
#include "tokenizer/chatml.h"

namespace anetrain {

namespace fs = std::filesystem;

namespace {

std::string strip(const std::string& s, const char* chars = " \t\r\n") {
  const size_t a = s.find_first_not_of(chars);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(chars) - a + 1);
}

std::string lstrip_newlines(const std::string& s) {
  const size_t a = s.find_first_not_of('\n');
  return a == std::string::npos ? "" : s.substr(a);
}

// Accumulates text runs and special ids, each with the mask value its ids get.
struct Renderer {
  const Tokenizer& tok;
  bool train_on_prompt;
  std::vector<int32_t>& ids;
  std::vector<uint8_t>& mask;
  std::string pending;
  bool pending_counts = false;

  void text(const std::string& s, bool counts) {
    if (s.empty()) return;
    if (counts != pending_counts) flush();
    pending_counts = counts;
    pending += s;
  }
  void id(int32_t token, bool counts) {
    flush();
    ids.push_back(token);
    mask.push_back(counts || train_on_prompt ? 1 : 0);
  }
  void flush() {
    if (pending.empty()) return;
    const std::vector<int32_t> run = tok.encode(pending, false, false);
    ids.insert(ids.end(), run.begin(), run.end());
    mask.insert(mask.end(), run.size(), pending_counts || train_on_prompt ? 1 : 0);
    pending.clear();
  }
};

// Qwen3's template: a reply after the last user message carries a reasoning block — the empty one
// on the final reply, which is scaffolding and not trained on; a non-empty one (written as
// "<think>…</think>" in the content) is the assistant's own text and counts.
void render_chatml(const Conversation& c, Renderer& r) {
  size_t last_query = c.messages.size() - 1;
  for (size_t i = c.messages.size(); i-- > 0;)
    if (c.messages[i].role == ChatRole::user) {
      last_query = i;
      break;
    }
  for (size_t i = 0; i < c.messages.size(); ++i) {
    const ChatMessage& m = c.messages[i];
    if (m.role != ChatRole::assistant) {
      r.text(chatml_turn(m.role == ChatRole::system ? "system" : "user", m.text), false);
      continue;
    }
    std::string content = m.text, reasoning;
    if (const size_t close = content.find("</think>"); close != std::string::npos) {
      std::string before = content.substr(0, close);
      while (!before.empty() && before.back() == '\n') before.pop_back();
      const size_t open = before.rfind("<think>");
      reasoning = lstrip_newlines(open == std::string::npos ? before : before.substr(open + 7));
      content = lstrip_newlines(content.substr(content.rfind("</think>") + 8));
    }
    r.text(chatml_open("assistant"), false);
    if (i > last_query && (i + 1 == c.messages.size() || !reasoning.empty())) {
      if (reasoning.empty()) r.text(std::string(kChatmlEmptyThink), false);
      else r.text("<think>\n" + strip(reasoning, "\n") + "\n</think>\n\n", true);
      content = lstrip_newlines(content);
    }
    r.text(content + std::string(kChatmlEnd), true);
    r.text("\n", false);
  }
}

// Meta's Llama-2 layout (its reference chat_completion): per exchange
// BOS "[INST] (<<SYS>>\n…\n<</SYS>>\n\n)user [/INST] reply " EOS.
void render_llama2(const Conversation& c, Renderer& r) {
  size_t i = 0;
  std::string system;
  if (c.messages[0].role == ChatRole::system) system = "<<SYS>>\n" + strip(c.messages[i++].text) + "\n<</SYS>>\n\n";
  for (; i < c.messages.size(); ++i) {
    const ChatMessage& m = c.messages[i];
    if (m.role == ChatRole::user) {
      r.id(r.tok.bos_id(), false);
      r.text("[INST] " + system + strip(m.text) + " [/INST]", false);
      system.clear();
    } else {  // a reply: its dummy-prefix space stands for the one after [/INST]; Meta's trailing one kept
      r.text(strip(m.text) + " ", true);
      r.id(r.tok.eos_id(), true);
    }
  }
  r.flush();
}

// "User: …\nAssistant: reply" with the reply closed by EOS (or a line break without one).
void render_plain(const Conversation& c, Renderer& r) {
  // A SentencePiece vocabulary gives each encoded run a leading space of its own.
  const bool space_prefixed = r.tok.kind() != "hf-bytelevel";
  if (r.tok.bos_id() >= 0) r.id(r.tok.bos_id(), false);
  for (const ChatMessage& m : c.messages) {
    if (m.role == ChatRole::system) r.text("System: " + strip(m.text) + "\n", false);
    if (m.role == ChatRole::user) r.text("User: " + strip(m.text) + "\n", false);
    if (m.role != ChatRole::assistant) continue;
    r.text("Assistant:", false);
    r.flush();
    r.text((space_prefixed ? "" : " ") + strip(m.text), true);
    if (r.tok.eos_id() >= 0) r.id(r.tok.eos_id(), true);
    else r.text("\n", true);
  }
  r.flush();
}

std::string template_text(const nlohmann::json& t) {
  if (t.is_string()) return t.get<std::string>();
  std::string all;  // some configs list named templates: [{"name": …, "template": …}]
  if (t.is_array())
    for (const auto& e : t)
      if (e.is_object() && e.contains("template") && e["template"].is_string()) all += e["template"].get<std::string>();
  return all;
}

}  // namespace

const char* chat_template_name(ChatTemplate t) {
  return t == ChatTemplate::chatml ? "chatml" : t == ChatTemplate::llama2 ? "llama2" : "plain";
}

ChatTemplate parse_chat_template(const std::string& name) {
  if (name == "chatml") return ChatTemplate::chatml;
  if (name == "llama2") return ChatTemplate::llama2;
  if (name == "plain") return ChatTemplate::plain;
  fail("unknown chat template \"" + name + "\" (expected auto, chatml, llama2 or plain)");
}

ChatTemplate detect_chat_template(const std::string& tokenizer_path, const Tokenizer& tok, std::string& why) {
  const fs::path dir = fs::is_directory(tokenizer_path) ? fs::path(tokenizer_path) : fs::path(tokenizer_path).parent_path();
  const fs::path config = dir / "tokenizer_config.json";
  if (fs::exists(config)) {
    std::ifstream in(config);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      fail(config.string() + ": malformed JSON: " + e.what() + "\nhint: give --template chatml|llama2|plain");
    }
    const std::string t = j.is_object() && j.contains("chat_template") ? template_text(j["chat_template"]) : "";
    if (t.find(kChatmlStart) != std::string::npos) {
      why = "the chat_template of " + config.string() + " uses <|im_start|>";
      return ChatTemplate::chatml;
    }
    if (t.find("[INST]") != std::string::npos) {
      why = "the chat_template of " + config.string() + " uses [INST]";
      return ChatTemplate::llama2;
    }
  }
  if (tok.piece_id(kChatmlStart) && tok.piece_id(kChatmlEnd)) {
    why = "the tokenizer has <|im_start|> and <|im_end|> tokens";
    return ChatTemplate::chatml;
  }
  why = "no chat template next to the tokenizer and no ChatML tokens in it";
  return ChatTemplate::plain;
}

void check_renderable(const Conversation& c, ChatTemplate t, const Tokenizer& tok) {
  if (t == ChatTemplate::chatml && (!tok.piece_id(kChatmlStart) || !tok.piece_id(kChatmlEnd)))
    fail("the chatml template needs <|im_start|> and <|im_end|> tokens, which this tokenizer lacks");
  if (t != ChatTemplate::llama2) return;
  if (tok.bos_id() < 0 || tok.eos_id() < 0) fail("the llama2 template needs a tokenizer with BOS and EOS");
  size_t i = c.messages[0].role == ChatRole::system ? 1 : 0;
  for (size_t k = 0; i < c.messages.size(); ++i, ++k) {
    const ChatRole want = k % 2 == 0 ? ChatRole::user : ChatRole::assistant;
    if (c.messages[i].role != want)
      fail("the llama2 template needs an optional system message first, then user and assistant in turn; message " +
           std::to_string(i) + " is " + (c.messages[i].role == ChatRole::system ? "system" : k % 2 ? "user" : "assistant"));
  }
}

void render_conversation(const Conversation& c, ChatTemplate t, const Tokenizer& tok, bool train_on_prompt,
                         std::vector<int32_t>& ids, std::vector<uint8_t>& mask) {
  Renderer r{tok, train_on_prompt, ids, mask, {}, false};
  if (t == ChatTemplate::chatml) render_chatml(c, r);
  else if (t == ChatTemplate::llama2) render_llama2(c, r);
  else render_plain(c, r);
  r.flush();
}

std::vector<int32_t> render_reply_prompt(const Conversation& c, ChatTemplate t, const Tokenizer& tok) {
  if (c.messages.empty() || c.messages.back().role != ChatRole::user) fail("a reply answers a user's message");
  Conversation with_reply = c;
  // Any text: each template encodes the reply as a run of its own, so its first counted id starts
  // where the prompt's ids end, whatever the reply says.
  with_reply.messages.push_back({ChatRole::assistant, "x"});
  check_renderable(with_reply, t, tok);
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;
  render_conversation(with_reply, t, tok, false, ids, mask);
  size_t first = 0;
  while (first < mask.size() && !mask[first]) ++first;
  ids.resize(first);
  return ids;
}

}  // namespace anetrain
