// The BPE trainer and `prepare`: a tokenizer trained on real text round-trips that text exactly
// through both files it writes (tokenizer.json and tokenizer.bin); bad corpora and too-small
// vocabularies are refused with clear errors; prepare reads text, JSONL and TinyStories JSON,
// puts BOS before every document, splits validation off, and names the offset of bad JSON.
#include <gtest/gtest.h>

#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/prepare.h"
#include "data/shard.h"
#include "formats/load.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"

namespace anetrain {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("anetrain_bpe_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// The first `lines` lines of War and Peace (real English with punctuation and quotes).
std::vector<std::string> war_and_peace(size_t lines) {
  gzFile gz = gzopen((std::string(ANETRAIN_ASSETS) + "/corpora/war-and-peace.txt.gz").c_str(), "rb");
  EXPECT_NE(gz, nullptr);
  std::vector<std::string> out;
  char buf[1 << 14];
  while (out.size() < lines && gzgets(gz, buf, sizeof buf)) {
    std::string s(buf);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    out.push_back(s);
  }
  gzclose(gz);
  return out;
}

void write_lines(const fs::path& p, const std::vector<std::string>& lines) {
  std::ofstream f(p, std::ios::binary);
  for (const auto& l : lines) f << l << "\n";
}

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    FAIL() << "expected an Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(BpeTrainer, TrainedTokenizerRoundTripsTheCorpus) {
  const fs::path dir = scratch("rt");
  const auto lines = war_and_peace(6000);
  write_lines(dir / "corpus.txt", lines);
  BpeTrainOptions opt;
  opt.vocab_size = 1000;
  opt.verbose = false;
  BpeVocab v = train_bpe({(dir / "corpus.txt").string()}, opt);
  EXPECT_EQ(v.pieces.size(), 1000u);
  EXPECT_GT(v.merges.size(), 500u);
  write_bpe_tokenizer_json(v, (dir / "tokenizer.json").string());
  write_bpe_tokenizer_bin(v, (dir / "tokenizer.bin").string());
  auto json_tok = load_tokenizer((dir / "tokenizer.json").string());
  auto bin_tok = load_tokenizer((dir / "tokenizer.bin").string());
  EXPECT_EQ(json_tok->vocab_size(), 1000);
  EXPECT_EQ(bin_tok->vocab_size(), 1000);
  size_t tokens = 0, bytes = 0;
  for (const auto& line : lines) {
    const auto ids = json_tok->encode(line);
    ASSERT_EQ(json_tok->decode(ids), line);
    ASSERT_EQ(bin_tok->decode(bin_tok->encode(line)), line);
    tokens += ids.size();
    bytes += line.size();
  }
  // A learned vocabulary must compress: well over one byte per token on its own corpus.
  EXPECT_GT(double(bytes) / double(tokens), 2.5);
  // Text outside the training alphabet still round-trips through byte fallback.
  const std::string exotic = "naïve café — 東京 🙂\ttab";
  EXPECT_EQ(json_tok->decode(json_tok->encode(exotic)), exotic);
  EXPECT_EQ(bin_tok->decode(bin_tok->encode(exotic)), exotic);
  fs::remove_all(dir);
}

TEST(BpeTrainer, RejectsBadInput) {
  const fs::path dir = scratch("bad");
  write_lines(dir / "ok.txt", {"hello world", "hello there"});
  BpeTrainOptions opt;
  opt.verbose = false;
  opt.vocab_size = 200;
  expect_error([&] { train_bpe({(dir / "ok.txt").string()}, opt); }, "smaller than the byte alphabet");
  opt.vocab_size = 300;
  { std::ofstream(dir / "bad.txt", std::ios::binary) << "fine\nbroken \xc3\x28 here\n"; }
  expect_error([&] { train_bpe({(dir / "bad.txt").string()}, opt); }, "at byte 12: invalid UTF-8");
  { std::ofstream(dir / "empty.txt"); }
  expect_error([&] { train_bpe({(dir / "empty.txt").string()}, opt); }, "empty");
  expect_error([&] { train_bpe({(dir / "missing.txt").string()}, opt); }, "cannot open");
  fs::remove_all(dir);
}

TEST(Prepare, ReadsEveryInputFormat) {
  const fs::path dir = scratch("docs");
  { std::ofstream(dir / "a.txt") << "First paragraph\nstill first.\n\nSecond one.\n"; }
  { std::ofstream(dir / "b.jsonl") << "{\"text\": \"one\"}\n\n\"two\"\n{\"story\": \"three\"}\n"; }
  { std::ofstream(dir / "c.json") << "[{\"story\": \"Once upon a time.\", \"id\": 3}, {\"story\": \"The end.\"}]"; }
  EXPECT_EQ(read_documents((dir / "a.txt").string(), false),
            (std::vector<std::string>{"First paragraph\nstill first.", "Second one."}));
  EXPECT_EQ(read_documents((dir / "a.txt").string(), true).size(), 3u);
  EXPECT_EQ(read_documents((dir / "b.jsonl").string(), false), (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(read_documents((dir / "c.json").string(), false),
            (std::vector<std::string>{"Once upon a time.", "The end."}));
  { std::ofstream(dir / "bad.jsonl") << "{\"text\": \"ok\"}\n{\"text\": oops}\n"; }
  expect_error([&] { read_documents((dir / "bad.jsonl").string(), false); }, "bad.jsonl: at byte 24");
  { std::ofstream(dir / "bad.json") << "[{\"story\": \"a\"}, {\"story\" \"b\"}]"; }
  expect_error([&] { read_documents((dir / "bad.json").string(), false); }, "bad.json: at byte 28");
  { std::ofstream(dir / "empty.txt"); }
  expect_error([&] { read_documents((dir / "empty.txt").string(), false); }, "empty file");
  fs::remove_all(dir);
}

TEST(Prepare, WritesShardsWithBosAndValidationSplit) {
  const fs::path dir = scratch("shards");
  const auto lines = war_and_peace(3000);
  write_lines(dir / "corpus.txt", lines);
  BpeTrainOptions bo;
  bo.vocab_size = 600;
  bo.verbose = false;
  BpeVocab v = train_bpe({(dir / "corpus.txt").string()}, bo);
  write_bpe_tokenizer_json(v, (dir / "tokenizer.json").string());
  auto tok = load_tokenizer((dir / "tokenizer.json").string());
  PrepareOptions po;
  po.out_dir = (dir / "out").string();
  po.doc_per_line = true;
  po.val_frac = 0.1;
  po.threads = 2;
  po.progress = false;
  PrepareSummary s = prepare({(dir / "corpus.txt").string()}, *tok, po);
  size_t nonempty = 0;
  for (const auto& l : lines) nonempty += !l.empty();
  EXPECT_EQ(s.documents, nonempty);
  ASSERT_EQ(s.train_shards.size(), 1u);
  ASSERT_EQ(s.val_shards.size(), 1u);
  TokenShard train(s.train_shards[0]), val(s.val_shards[0]);
  EXPECT_TRUE(train.has_header());
  EXPECT_EQ(train.header().tokenizer_fingerprint, tok->fingerprint());
  EXPECT_EQ(train.size() + val.size(), s.train_tokens + s.val_tokens);
  size_t bos = 0;
  for (size_t i = 0; i < train.size(); ++i) bos += train.at(i) == 1;
  for (size_t i = 0; i < val.size(); ++i) bos += val.at(i) == 1;
  EXPECT_EQ(bos, nonempty);  // one BOS per document, none elsewhere
  EXPECT_EQ(train.at(0), 1u);
  EXPECT_NEAR(double(val.size()) / double(train.size() + val.size()), 0.1, 0.03);
  // The shards decode back to the documents, in order.
  std::vector<int32_t> first;
  for (size_t i = 1; i < train.size() && train.at(i) != 1; ++i) first.push_back(int32_t(train.at(i)));
  EXPECT_EQ(tok->decode(first), lines[0]);
  // Same shards whatever the thread count.
  po.out_dir = (dir / "out1").string();
  po.threads = 1;
  PrepareSummary s1 = prepare({(dir / "corpus.txt").string()}, *tok, po);
  std::ifstream a(s.train_shards[0], std::ios::binary), b(s1.train_shards[0], std::ios::binary);
  EXPECT_TRUE(std::equal(std::istreambuf_iterator<char>(a), {}, std::istreambuf_iterator<char>(b)));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anetrain
