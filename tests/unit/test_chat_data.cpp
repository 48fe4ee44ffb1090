// prepare --chat (data/chat.h): conversations in both JSONL forms rendered with the real Qwen3
// and Llama-2 tokenizers, the loss mask exactly on the replies, malformed lines named by file and
// line (or skipped and counted), mask files checked on load, and the sampler's window masks.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "data/chat.h"
#include "data/sampler.h"
#include "formats/load.h"

namespace anetrain::test {
namespace {

namespace fs = std::filesystem;
const std::string kAssets = ANETRAIN_ASSETS;
const std::string kQwen = kAssets + "/hf/qwen3/tokenizer.json";
const std::string kLlama2 = kAssets + "/llama2c/tokenizer.bin";

fs::path scratch_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("anetrain_chat_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string write_text(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
  return p.string();
}

// The ids of each run of counted tokens, decoded.
std::vector<std::string> counted_runs(const Tokenizer& tok, const std::vector<int32_t>& ids,
                                      const std::vector<uint8_t>& mask) {
  std::vector<std::string> runs;
  std::vector<int32_t> cur;
  for (size_t i = 0; i <= ids.size(); ++i) {
    if (i < ids.size() && mask[i]) {
      cur.push_back(ids[i]);
    } else if (!cur.empty()) {
      runs.push_back(tok.decode(cur));
      cur.clear();
    }
  }
  return runs;
}

const char* kOpenAi =
    R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi there"},)"
    R"({"role":"assistant","content":"Hello!"},{"role":"user","content":"What is 2+2?"},)"
    R"({"role":"assistant","content":"It is 4."}]})";
const char* kShareGpt =
    R"({"conversations":[{"from":"system","value":"Be brief."},{"from":"human","value":"Hi there"},)"
    R"({"from":"gpt","value":"Hello!"},{"from":"human","value":"What is 2+2?"},)"
    R"({"from":"gpt","value":"It is 4."}]})";

// Qwen3's template: the last reply after the last question carries the empty reasoning block
// (not trained on); the ids equal the whole rendered text's encoding, so rendering by runs never
// changes the tokenization; only the replies and their <|im_end|> count.
TEST(ChatData, ChatmlBothFormsMatchTheWholeTextAndMaskOnlyReplies) {
  if (!fs::exists(kQwen)) GTEST_SKIP() << kQwen << " missing";
  auto tok = load_tokenizer(kQwen);
  const std::string whole =
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
      "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
      "<|im_start|>assistant\n<think>\n\n</think>\n\nIt is 4.<|im_end|>\n";
  for (const char* line : {kOpenAi, kShareGpt}) {
    std::vector<int32_t> ids;
    std::vector<uint8_t> mask;
    render_conversation(parse_conversation(line), ChatTemplate::chatml, *tok, false, ids, mask);
    EXPECT_EQ(ids, tok->encode(whole));
    ASSERT_EQ(mask.size(), ids.size());
    EXPECT_EQ(counted_runs(*tok, ids, mask), (std::vector<std::string>{"Hello!<|im_end|>", "It is 4.<|im_end|>"}));
    std::vector<int32_t> all_ids;
    std::vector<uint8_t> all;
    render_conversation(parse_conversation(line), ChatTemplate::chatml, *tok, true, all_ids, all);
    EXPECT_EQ(all_ids, ids);
    EXPECT_EQ(all, std::vector<uint8_t>(ids.size(), 1));
  }
  std::string why;
  EXPECT_EQ(detect_chat_template(kQwen, *tok, why), ChatTemplate::chatml);
  EXPECT_NE(why.find("tokenizer_config.json"), std::string::npos) << why;
}

// Meta's reference layout, per exchange BOS "[INST] … [/INST] reply " EOS, encoded whole.
TEST(ChatData, Llama2MatchesMetasLayoutAndMasksRepliesWithEos) {
  if (!fs::exists(kLlama2)) GTEST_SKIP() << kLlama2 << " missing";
  auto tok = load_tokenizer(kLlama2);
  std::vector<int32_t> want = {tok->bos_id()};
  for (int32_t id : tok->encode("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST] Hello! ")) want.push_back(id);
  want.push_back(tok->eos_id());
  want.push_back(tok->bos_id());
  for (int32_t id : tok->encode("[INST] What is 2+2? [/INST] It is 4. ")) want.push_back(id);
  want.push_back(tok->eos_id());
  for (const char* line : {kOpenAi, kShareGpt}) {
    std::vector<int32_t> ids;
    std::vector<uint8_t> mask;
    const Conversation c = parse_conversation(line);
    check_renderable(c, ChatTemplate::llama2, *tok);
    render_conversation(c, ChatTemplate::llama2, *tok, false, ids, mask);
    EXPECT_EQ(ids, want);
    // Each counted run is a reply and its EOS (sentencepiece decodes EOS as nothing).
    EXPECT_EQ(counted_runs(*tok, ids, mask), (std::vector<std::string>{"Hello! ", "It is 4. "}));
    size_t eos_counted = 0;
    for (size_t i = 0; i < ids.size(); ++i) eos_counted += ids[i] == tok->eos_id() && mask[i];
    EXPECT_EQ(eos_counted, 2u);
  }
  // The chatml template needs its markers; llama2 needs alternation.
  EXPECT_THROW(check_renderable(parse_conversation(kOpenAi), ChatTemplate::chatml, *tok), Error);
  const Conversation twice_user = parse_conversation(
      R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"assistant","content":"c"}]})");
  EXPECT_THROW(check_renderable(twice_user, ChatTemplate::llama2, *tok), Error);
  std::string why;
  EXPECT_EQ(detect_chat_template(kLlama2, *tok, why), ChatTemplate::plain) << why;
}

TEST(ChatData, PlainTemplateCountsRepliesAndEos) {
  if (!fs::exists(kLlama2) || !fs::exists(kQwen)) GTEST_SKIP() << "tokenizers missing";
  for (const std::string& path : {kLlama2, kQwen}) {
    auto tok = load_tokenizer(path);
    std::vector<int32_t> ids;
    std::vector<uint8_t> mask;
    render_conversation(parse_conversation(kOpenAi), ChatTemplate::plain, *tok, false, ids, mask);
    const std::vector<std::string> runs = counted_runs(*tok, ids, mask);
    ASSERT_EQ(runs.size(), 2u) << path;
    // A SentencePiece decode drops the leading space of a run; byte-level keeps it; EOS text follows
    // the format (nothing for sentencepiece, <|endoftext|> for Qwen3).
    const std::string eos = tok->kind() == "hf-bytelevel" ? tok->piece(tok->eos_id()) : "";
    const std::string lead = tok->kind() == "hf-bytelevel" ? " " : "";
    EXPECT_EQ(runs[0], lead + "Hello!" + eos) << path;
    EXPECT_EQ(runs[1], lead + "It is 4." + eos) << path;
  }
}

// generate --chat's prompt is what training put before a reply: for every template and tokenizer,
// the prompt's ids are the rendered conversation's up to the reply's first counted id, whatever the
// reply says; ChatML's ends with Qwen3's empty reasoning block, llama2's with "[/INST]".
TEST(ChatData, ReplyPromptIsWhatTrainingPutBeforeTheReply) {
  if (!fs::exists(kLlama2) || !fs::exists(kQwen)) GTEST_SKIP() << "tokenizers missing";
  const auto qwen = load_tokenizer(kQwen), llama = load_tokenizer(kLlama2);
  Conversation asked;
  asked.messages = {{ChatRole::system, "Be brief."}, {ChatRole::user, "What is 2+2?"}};
  struct Case {
    ChatTemplate t;
    const Tokenizer& tok;
  };
  for (const Case& k : {Case{ChatTemplate::chatml, *qwen}, Case{ChatTemplate::plain, *qwen},
                        Case{ChatTemplate::llama2, *llama}, Case{ChatTemplate::plain, *llama}}) {
    const std::vector<int32_t> prompt = render_reply_prompt(asked, k.t, k.tok);
    for (const char* reply : {"It is 4.", "Four", " 4", "\n4"}) {
      Conversation answered = asked;
      answered.messages.push_back({ChatRole::assistant, reply});
      std::vector<int32_t> ids;
      std::vector<uint8_t> mask;
      render_conversation(answered, k.t, k.tok, false, ids, mask);
      ASSERT_GT(ids.size(), prompt.size()) << chat_template_name(k.t);
      EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + std::ptrdiff_t(prompt.size())), prompt)
          << chat_template_name(k.t) << " / " << k.tok.kind() << " / " << reply;
      EXPECT_TRUE(std::all_of(mask.begin(), mask.begin() + std::ptrdiff_t(prompt.size()), [](uint8_t v) { return v == 0; }));
      EXPECT_EQ(mask[prompt.size()], 1) << chat_template_name(k.t) << " / " << reply;
    }
  }
  EXPECT_EQ(qwen->decode(render_reply_prompt(asked, ChatTemplate::chatml, *qwen)),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  std::vector<int32_t> want = {llama->bos_id()};
  for (int32_t id : llama->encode("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is 2+2? [/INST]")) want.push_back(id);
  EXPECT_EQ(render_reply_prompt(asked, ChatTemplate::llama2, *llama), want);
  EXPECT_THROW(render_reply_prompt(asked, ChatTemplate::chatml, *llama), Error);  // no ChatML markers
}

TEST(ChatData, BadLinesNameFileAndLineOrAreSkippedAndCounted) {
  const fs::path d = scratch_dir("bad");
  const std::string path = write_text(
      d / "c.jsonl",
      std::string(kOpenAi) + "\n" + "{\"messages\": [\n" +  // line 2: bad JSON
          R"({"messages":[{"role":"tool","content":"x"},{"role":"assistant","content":"y"}]})" + "\n" +  // 3: role
          R"({"messages":[{"role":"user"},{"role":"assistant","content":"y"}]})" + "\n" +  // 4: no content
          "\n" +  // 5: blank, ignored
          R"({"conversations":[{"from":"human","value":"only a question"}]})" + "\n" +  // 6: no reply
          kShareGpt + "\n");
  uint64_t skipped = 0;
  std::vector<std::string> notes;
  try {
    read_conversations(path, false, skipped, notes);
    FAIL() << "a malformed line was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":2: malformed JSON"), std::string::npos) << e.what();
  }
  const std::vector<Conversation> ok = read_conversations(path, true, skipped, notes);
  ASSERT_EQ(ok.size(), 2u);
  EXPECT_EQ(ok[0].source, path + ":1");
  EXPECT_EQ(ok[1].source, path + ":7");
  EXPECT_EQ(skipped, 4u);
  ASSERT_EQ(notes.size(), 4u);
  EXPECT_NE(notes[0].find(":2: malformed JSON"), std::string::npos) << notes[0];
  EXPECT_NE(notes[1].find(":3: messages[0]: unknown role \"tool\""), std::string::npos) << notes[1];
  EXPECT_NE(notes[2].find(":4: messages[0]: missing \"content\""), std::string::npos) << notes[2];
  EXPECT_NE(notes[3].find(":6: no assistant message"), std::string::npos) << notes[3];
}

// prepare_chat's shards open with their masks; a damaged mask is an error naming it.
TEST(ChatData, PreparedShardsCarryMasksCheckedOnLoad) {
  if (!fs::exists(kQwen)) GTEST_SKIP() << kQwen << " missing";
  auto tok = load_tokenizer(kQwen);
  const fs::path d = scratch_dir("prepare");
  std::string lines;
  for (int i = 0; i < 20; ++i) lines += std::string(i % 2 ? kOpenAi : kShareGpt) + "\n";
  PrepareOptions opt;
  opt.out_dir = (d / "out").string();
  opt.val_frac = 0.1;
  opt.progress = false;
  ChatPrepareOptions chat;
  const ChatPrepareSummary s = prepare_chat({write_text(d / "c.jsonl", lines)}, *tok, opt, chat);
  EXPECT_EQ(s.shards.documents, 20u);
  ASSERT_EQ(s.shards.train_shards.size(), 1u);
  ASSERT_EQ(s.shards.val_shards.size(), 1u);
  TokenShard train(s.shards.train_shards[0]);
  ASSERT_TRUE(train.has_mask());
  std::vector<int32_t> one_ids;
  std::vector<uint8_t> one_mask;
  render_conversation(parse_conversation(kOpenAi), ChatTemplate::chatml, *tok, false, one_ids, one_mask);
  ASSERT_EQ(train.size(), 18 * one_ids.size());  // 2 of 20 went to validation
  for (size_t i = 0; i < train.size(); ++i) {
    EXPECT_EQ(int32_t(train.at(i)), one_ids[i % one_ids.size()]);
    EXPECT_EQ(train.counts(i), one_mask[i % one_ids.size()]);
  }
  uint64_t per_conversation = 0;
  for (uint8_t v : one_mask) per_conversation += v;
  EXPECT_EQ(s.counted_tokens, 20 * per_conversation);

  // Truncated: the size no longer matches the header's count.
  const std::string mask_path = loss_mask_path(s.shards.train_shards[0]);
  fs::resize_file(mask_path, fs::file_size(mask_path) - 1);
  try {
    TokenShard broken(s.shards.train_shards[0]);
    FAIL() << "a truncated mask was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(mask_path), std::string::npos) << e.what();
  }
  // A plain prepare into the same folder refuses to put shards under the old masks.
  EXPECT_THROW(prepare({write_text(d / "t.txt", "a story\n\nanother one\n")}, *tok, opt), Error);
}

// The sampler's masks come with their windows; peeking at the counts leaves the draw unchanged.
TEST(ChatData, SamplerMasksAndPeekedCountsMatchTheDraw) {
  const fs::path d = scratch_dir("sampler");
  std::vector<uint32_t> ids(200);
  std::vector<uint8_t> mask(200);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = uint32_t(i);  // an id names its position
    mask[i] = uint8_t((i / 7) % 3 == 0);
  }
  const std::string shard = (d / "train_000.bin").string();
  write_shard(shard, ids, 256, 2, 0);
  write_loss_mask(loss_mask_path(shard), mask);
  TokenSource train, val;
  open_sources({shard}, {}, 0.0, train, val);
  ASSERT_TRUE(train.has_masks());
  for (Sampling mode : {Sampling::random, Sampling::epoch}) {
    const int T = 16, B = 3;
    WindowSampler s(train, T, mode, 7);
    for (int step = 0; step < 8; ++step) {  // epoch mode crosses epochs (12 windows each)
      const std::vector<uint32_t> peek = s.peek_target_counts(2 * B);
      for (int g = 0; g < 2; ++g) {
        std::vector<int32_t> in(size_t(B) * T), tg(size_t(B) * T);
        std::vector<uint8_t> m(size_t(B) * T);
        s.next_batch(B, in.data(), tg.data(), m.data());
        for (int b = 0; b < B; ++b) {
          uint32_t n = 0;
          for (int t = 0; t < T; ++t) {
            const size_t i = size_t(b) * T + t;
            EXPECT_EQ(m[i], mask[size_t(tg[i])]);  // the target's own mask byte
            n += m[i];
          }
          EXPECT_EQ(n, peek[size_t(g) * B + b]);
        }
      }
    }
  }
  // A shard without a mask reads all ones.
  const std::string plain = (d / "plain_000.bin").string();
  write_shard(plain, ids, 256, 2, 0);
  TokenShard p(plain);
  EXPECT_FALSE(p.has_mask());
  EXPECT_EQ(p.counts(5), 1);
}

}  // namespace
}  // namespace anetrain::test
