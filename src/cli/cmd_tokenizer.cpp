// `anetrain tokenizer encode|decode -z TOKENIZER`: text lines ↔ lines of space-separated ids.
// Lines split on '\n' only. With --json each text line is a JSON string instead, so text holding
// newlines or any other byte survives the trip (this is how the parity tests drive us).
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "formats/load.h"
#include "tokenizer/tokenizer.h"

namespace anetrain {

namespace {

struct TokenizerOptions {
  std::string tokenizer, input;
  bool bos = false, eos = false, json = false;
  int vocab_size = 0;
};

std::string read_all(const std::string& path) {
  if (path.empty() || path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path + ": cannot open for reading");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Calls fn(line, number) for each '\n'-separated line; a final newline does not start a line.
template <typename Fn>
void for_each_line(std::string_view all, Fn&& fn) {
  size_t number = 1;
  while (!all.empty()) {
    const size_t nl = all.find('\n');
    fn(all.substr(0, nl), number++);
    if (nl == std::string_view::npos) break;
    all.remove_prefix(nl + 1);
  }
}

// Output is buffered and written in large blocks: one write per line would dominate the run time.
class Out {
 public:
  // Best effort only: this also runs while an error unwinds, where throwing would abort.
  ~Out() {
    if (!buf_.empty()) (void)!std::fwrite(buf_.data(), 1, buf_.size(), stdout);
  }
  std::string& buf() { return buf_; }
  void maybe_flush() {
    if (buf_.size() > (1u << 16)) flush();
  }
  void flush() {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), stdout) != buf_.size())
      fail("cannot write to standard output");
    buf_.clear();
  }

 private:
  std::string buf_;
};

std::string where(const TokenizerOptions& o, size_t line) {
  return (o.input.empty() ? std::string("<stdin>") : o.input) + ": line " + std::to_string(line) + ": ";
}

int run_encode(const TokenizerOptions& o) {
  const auto tok = load_tokenizer(o.tokenizer, o.vocab_size);
  const std::string all = read_all(o.input);
  Out out;
  for_each_line(all, [&](std::string_view line, size_t number) {
    std::string text;
    if (o.json) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        fail(where(o, number) + "not valid JSON: " + e.what());
      }
      if (!j.is_string()) fail(where(o, number) + "expected a JSON string (--json)");
      text = j.get<std::string>();
    }
    const std::vector<int32_t> ids = tok->encode(o.json ? std::string_view(text) : line, o.bos, o.eos);
    std::string& b = out.buf();
    char num[16];
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) b.push_back(' ');
      b.append(num, std::to_chars(num, num + sizeof num, ids[i]).ptr);
    }
    b.push_back('\n');
    out.maybe_flush();
  });
  out.flush();
  return 0;
}

int run_decode(const TokenizerOptions& o) {
  const auto tok = load_tokenizer(o.tokenizer, o.vocab_size);
  const std::string all = read_all(o.input);
  Out out;
  std::vector<int32_t> ids;
  for_each_line(all, [&](std::string_view line, size_t number) {
    ids.clear();
    const char* p = line.data();
    const char* end = p + line.size();
    while (p < end) {
      if (*p == ' ' || *p == '\t' || *p == '\r') {
        ++p;
        continue;
      }
      int32_t id;
      const auto [next, ec] = std::from_chars(p, end, id);
      if (ec != std::errc() || (next < end && *next != ' ' && *next != '\t' && *next != '\r'))
        fail(where(o, number) + "expected space-separated token ids, found \"" + std::string(line) + "\"");
      if (id < 0 || id >= tok->vocab_size())
        fail(where(o, number) + "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
             std::to_string(tok->vocab_size()) + ")");
      ids.push_back(id);
      p = next;
    }
    const std::string text = tok->decode(ids);
    if (o.json)  // bytes that are not UTF-8 (a lone byte token) cannot be JSON; they print as U+FFFD
      out.buf() += nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    else
      out.buf() += text;
    out.buf().push_back('\n');
    out.maybe_flush();
  });
  out.flush();
  return 0;
}

}  // namespace

void add_tokenizer_command(CLI::App& app, Command& run) {
  struct Options {
    TokenizerOptions tok;
  };
  const auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("tokenizer", "Encode text to token ids, or decode ids to text");
  cmd->require_subcommand(1);
  auto common = [o](CLI::App* sub, const char* input_help, const char* json_help) {
    sub->add_option("-z,--tokenizer", o->tok.tokenizer, "llama2.c tokenizer.bin or HF tokenizer.json")->required();
    sub->add_option("-i,--input", o->tok.input, input_help);
    sub->add_option("--vocab-size", o->tok.vocab_size, "Entries to read from a tokenizer.bin (0: the whole file)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    sub->add_flag("--json", o->tok.json, json_help);
  };
  auto* enc = cmd->add_subcommand("encode", "Text lines (stdin or -i) → one line of space-separated ids each");
  common(enc, "Read text from FILE instead of stdin", "Each input line is a JSON string (text may hold newlines)");
  enc->add_flag("--bos", o->tok.bos, "Start each line with BOS");
  enc->add_flag("--eos", o->tok.eos, "End each line with EOS");
  enc->callback([&run, o] { run = [o] { return run_encode(o->tok); }; });

  auto* dec = cmd->add_subcommand("decode", "Lines of space-separated ids (stdin or -i) → one text line each");
  common(dec, "Read ids from FILE instead of stdin", "Print each decoded text as a JSON string");
  dec->callback([&run, o] { run = [o] { return run_decode(o->tok); }; });
}

}  // namespace anetrain
