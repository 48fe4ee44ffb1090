// HF tokenizer.json: the hand-written split regexes against what a backtracking engine matches,
// the Unicode helpers, known ids from the real Qwen3 and Mistral files, added-token rules on a
// tiny synthetic file, and malformed files. Id-for-id parity on corpora is hf_parity.mjs's job.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "tokenizer/hf_tokenizer.h"

namespace anetrain {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;
using Words = std::vector<std::string>;
const std::string kQwen = std::string(ANETRAIN_ASSETS) + "/hf/qwen3/tokenizer.json";
const std::string kMistral = std::string(ANETRAIN_ASSETS) + "/hf/mistral7b-via-lenml-llama2/tokenizer.json";

Words split(const std::string& text, hf::SplitRegex re = hf::SplitRegex::kQwen) {
  std::vector<std::string_view> out;
  hf::split_words(text, re, out);
  return Words(out.begin(), out.end());
}

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("anetrain_hf_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p;
}

std::string write(const fs::path& p, const std::string& body) {
  std::ofstream(p, std::ios::binary) << body;
  return p.string();
}

// The error message of loading `body` as a tokenizer.json ("" when it loads).
std::string load_error(const std::string& body) {
  std::string path = write(temp_dir("bad") / "tokenizer.json", body);
  try {
    load_hf_tokenizer(path);
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    return msg;
  }
  return "";
}

TEST(HfSplit, QwenPattern) {
  EXPECT_EQ(split("Hello world"), (Words{"Hello", " world"}));
  EXPECT_EQ(split("   hello"), (Words{"  ", " hello"}));             // \s+(?!\S) gives one back
  EXPECT_EQ(split("x  !"), (Words{"x", " ", " !"}));
  EXPECT_EQ(split("a  \n\n b"), (Words{"a", "  \n\n", " b"}));       // ends after the last newline
  EXPECT_EQ(split("a\r\n\r\nb"), (Words{"a", "\r\n\r\n", "b"}));
  EXPECT_EQ(split("hi!!\n\nthere"), (Words{"hi", "!!\n\n", "there"}));
  EXPECT_EQ(split("end   "), (Words{"end", "   "}));
  EXPECT_EQ(split("I'M we'll 'x"), (Words{"I", "'M", " we", "'ll", " '", "x"}));
  EXPECT_EQ(split("'quote"), (Words{"'quote"}));                       // one non-letter, then letters
  EXPECT_EQ(split("'\u017F"), (Words{"'\u017F"}));                     // ſ case-folds to s
  EXPECT_EQ(split("12 345"), (Words{"1", "2", " ", "3", "4", "5"}));
  EXPECT_EQ(split("\u00e9t\u00e9 \u65e5\u672c"), (Words{"\u00e9t\u00e9", " \u65e5\u672c"}));
  // \s is Unicode White_Space: U+0085 is in it, U+FEFF is not (JavaScript's \s differs on both).
  EXPECT_EQ(split(" \u0085x"), (Words{" ", "\u0085x"}));
  EXPECT_EQ(split(" \ufeffx"), (Words{" \ufeff", "x"}));
}

TEST(HfSplit, OtherPatterns) {
  EXPECT_EQ(split("12345", hf::SplitRegex::kLlama3), (Words{"123", "45"}));
  EXPECT_EQ(split("I'M 12345  x", hf::SplitRegex::kGpt2), (Words{"I", "'", "M", " 12345", " ", " x"}));
  EXPECT_EQ(split("a\n\nb", hf::SplitRegex::kGpt2), (Words{"a", "\n", "\n", "b"}));  // no " ?" before b
  EXPECT_FALSE(hf::recognise_split_regex(R"(\s+)"));
}

TEST(HfSplit, PiecesCoverTheText) {
  const std::string alphabet[] = {"a", "Z", " ", "  ", "\n", "\r\n", "\t", "7", "'s", "'", "!", ".",
                                  "\u00e9", "\u4e2d", "\U0001F600", "\u00a0", "\u2028", "_"};
  uint32_t state = 1;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    for (int k = 0; k < 12; ++k) {
      state = state * 1664525u + 1013904223u;
      text += alphabet[(state >> 8) % std::size(alphabet)];
    }
    for (auto re : {hf::SplitRegex::kQwen, hf::SplitRegex::kLlama3, hf::SplitRegex::kGpt2}) {
      std::string joined;
      for (const auto& w : split(text, re)) {
        EXPECT_FALSE(w.empty());
        joined += w;
      }
      EXPECT_EQ(joined, text);
    }
  }
}

TEST(HfUnicode, NfcLossyAndByteAlphabet) {
  EXPECT_EQ(hf::nfc("e\u0301t\u00e9"), "\u00e9t\u00e9");
  EXPECT_EQ(hf::nfc("A\u030a and \u1100\u1161\u11a8"), "\u00c5 and \uac01");
  EXPECT_EQ(hf::nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(hf::utf8_lossy("a\xff b"), "a\uFFFD b");
  EXPECT_EQ(hf::utf8_lossy("x\xe2\x82"), "x\uFFFD");                 // one maximal ill-formed prefix
  EXPECT_EQ(hf::utf8_lossy("\xed\xa0\x80"), "\uFFFD\uFFFD\uFFFD");   // a surrogate is three
  EXPECT_EQ(hf::utf8_first_invalid("ok\xc0\x80"), 2u);              // overlong
  EXPECT_EQ(hf::byte_to_char(' '), U'\u0120');
  for (int b = 0; b < 256; ++b) EXPECT_EQ(hf::char_to_byte(hf::byte_to_char(uint8_t(b))), b);
}

TEST(HfTokenizer, Qwen3KnownIds) {
  if (!fs::exists(kQwen)) GTEST_SKIP() << kQwen << " missing";
  auto tok = load_hf_tokenizer(kQwen);
  EXPECT_EQ(tok->kind(), "hf-bytelevel");
  EXPECT_EQ(tok->vocab_size(), 151669);
  EXPECT_EQ(tok->bos_id(), -1);       // tokenizer_config.json: add_bos_token false
  EXPECT_EQ(tok->eos_id(), 151645);   // tokenizer_config.json: eos_token <|im_end|>
  EXPECT_TRUE(tok->is_special(151643));
  EXPECT_FALSE(tok->is_special(151667));  // <think> is an added token but not a special one
  EXPECT_FALSE(tok->is_special(9707));
  EXPECT_EQ(tok->piece(1879), "\u0120world");
  EXPECT_EQ(tok->piece_id("<|im_end|>"), 151645);
  EXPECT_FALSE(tok->piece_id("no such piece"));
  EXPECT_EQ(tok->encode("Hello world"), (Ids{9707, 1879}));
  EXPECT_EQ(tok->encode("Hello world", true, true), (Ids{9707, 1879, 151645}));
  const std::string chat = "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
  EXPECT_EQ(tok->encode(chat),
            (Ids{151644, 872, 198, 13048, 0, 151645, 198, 151644, 77091, 198, 151667, 271, 151668, 271}));
  EXPECT_EQ(tok->decode(tok->encode(chat)), chat);
  EXPECT_EQ(tok->encode("e\u0301"), tok->encode("\u00e9"));  // NFC first
  const std::string text = "  Caf\u00e9 \U0001F600 12,345\r\n\tI'M \u65e5\u672c  ";
  Ids ids = tok->encode(text);
  EXPECT_EQ(tok->decode(ids), text);
  std::string stream;
  for (size_t i = 0; i < ids.size(); ++i) stream += tok->decode_step(i ? ids[i - 1] : -1, ids[i]);
  EXPECT_EQ(stream, text);
  EXPECT_TRUE(tok->encode("").empty());
  EXPECT_THROW(tok->encode("bad \xff utf8"), Error);
  // The word cache is shared: concurrent encoders must see the same ids.
  std::vector<Ids> got(2);
  auto work = [&](size_t k) {
    for (int rep = 0; rep < 200; ++rep) got[k] = tok->encode(text + std::to_string(rep % 7) + " zebra" + std::to_string(rep));
  };
  std::thread t0(work, 0), t1(work, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(got[0], got[1]);
  EXPECT_EQ(tok->fingerprint(), load_hf_tokenizer(kQwen)->fingerprint());
  if (fs::exists(kMistral)) {
    EXPECT_NE(tok->fingerprint(), load_hf_tokenizer(kMistral)->fingerprint());
  }

  // Without tokenizer_config.json beside it, EOS falls back to <|endoftext|>.
  fs::path alone = temp_dir("qwen_alone") / "tokenizer.json";
  fs::copy_file(kQwen, alone, fs::copy_options::overwrite_existing);
  auto bare = load_hf_tokenizer(alone.string());
  EXPECT_EQ(bare->eos_id(), 151643);
  EXPECT_EQ(bare->bos_id(), -1);
}

TEST(HfTokenizer, MistralKnownIds) {
  if (!fs::exists(kMistral)) GTEST_SKIP() << kMistral << " missing";
  auto tok = load_hf_tokenizer(kMistral);
  EXPECT_EQ(tok->kind(), "hf-sentencepiece");
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->is_special(1));
  EXPECT_EQ(tok->encode("Hello world", true), (Ids{1, 22557, 1526}));
  EXPECT_EQ(tok->encode(" Hello  world"), (Ids{28705, 22557, 28705, 1526}));
  // 𝔘 is not in the vocab: byte fallback gives its four UTF-8 bytes as <0xNN> (id = byte + 3).
  EXPECT_EQ(tok->encode("\U0001D518"), (Ids{28705, 0xF0 + 3, 0x9D + 3, 0x94 + 3, 0x98 + 3}));
  EXPECT_EQ(tok->decode({0xF0 + 3}), "\uFFFD");  // a lone lead byte decodes to U+FFFD, as in HF
  EXPECT_EQ(tok->decode_step(1, 0xF0 + 3), "\xF0");  // streaming keeps the raw byte
  EXPECT_EQ(tok->encode("a<s>b"), (Ids{264, 1, 287}));  // "▁" is prepended to each stretch
  EXPECT_TRUE(tok->encode("").empty());
  EXPECT_EQ(tok->encode("", true), (Ids{1}));
  const std::string text = "  Caf\u00e9 \U0001F600 12,345\r\n\tI'M \u65e5\u672c  ";
  Ids ids = tok->encode(text);
  EXPECT_EQ(tok->decode(ids), text);
  std::string stream;
  for (size_t i = 0; i < ids.size(); ++i) stream += tok->decode_step(i ? ids[i - 1] : 1, ids[i]);
  EXPECT_EQ(stream, text);

  // Without tokenizer_config.json, BOS comes from the TemplateProcessing post-processor.
  fs::path alone = temp_dir("mistral_alone") / "tokenizer.json";
  fs::copy_file(kMistral, alone, fs::copy_options::overwrite_existing);
  EXPECT_EQ(load_hf_tokenizer(alone.string())->bos_id(), 1);
}

// A tiny SentencePiece-style file exercising added-token flags, unk fusing and normalized tokens.
const char* kTiny = R"({
  "added_tokens": [
    {"id": 5, "content": "<x>", "lstrip": true, "rstrip": true, "special": true},
    {"id": 6, "content": "<y>", "single_word": true},
    {"id": 7, "content": "a b", "normalized": true}],
  "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
  "pre_tokenizer": null,
  "decoder": {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "Fuse"}]},
  "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true,
            "vocab": {"<unk>": 0, "\u2581": 1, "a": 2, "b": 3, "\u2581a": 4},
            "merges": [["\u2581", "a"]]}
})";

TEST(HfTokenizer, AddedTokenRules) {
  auto tok = load_hf_tokenizer(write(temp_dir("tiny") / "tokenizer.json", kTiny));
  EXPECT_EQ(tok->kind(), "hf-sentencepiece");
  EXPECT_EQ(tok->encode("a  <x>  b"), (Ids{2, 5, 3}));       // lstrip/rstrip eat the spaces
  EXPECT_EQ(tok->encode("a<y>b"), (Ids{2, 0, 3}));           // not a single word: text, one fused unk
  EXPECT_EQ(tok->encode("a <y> b"), (Ids{2, 1, 6, 1, 3}));
  EXPECT_EQ(tok->encode("ba b"), (Ids{3, 7}));               // matched after normalization
  EXPECT_EQ(tok->encode(" a"), (Ids{4}));
  EXPECT_EQ(tok->decode({4, 5, 3}), " a<x>b");
  EXPECT_TRUE(tok->is_special(5));
  EXPECT_FALSE(tok->is_special(6));
}

TEST(HfTokenizer, MalformedFiles) {
  std::string e = load_error("this is not json");
  EXPECT_NE(e.find("at byte 1"), std::string::npos) << e;
  e = load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0");
  EXPECT_NE(e.find("at byte"), std::string::npos) << e;
  EXPECT_NE(load_error("[1, 2]").find("at byte 0"), std::string::npos);
  const std::string decoder = R"("decoder": {"type": "ByteLevel"})";
  EXPECT_NE(load_error("{" + decoder + "}").find("model"), std::string::npos);
  e = load_error("{" + decoder + R"(, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a c"]}})");
  EXPECT_NE(e.find("model.merges[0]: \"c\" is not in the vocabulary"), std::string::npos) << e;
  e = load_error("{" + decoder + R"(, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}})");
  EXPECT_NE(e.find("\"ab\" is not in the vocabulary"), std::string::npos) << e;
  e = load_error("{" + decoder + R"(, "model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}})");
  EXPECT_NE(e.find("two vocabulary entries"), std::string::npos) << e;
  e = load_error("{" + decoder + R"(, "model": {"type": "Unigram", "vocab": []}})");
  EXPECT_NE(e.find("only BPE"), std::string::npos) << e;
  e = load_error("{" + decoder + R"(, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+"},
      "behavior": "Isolated"}, "model": {"vocab": {}, "merges": []}})");
  EXPECT_NE(e.find("unsupported split regex \"\\\\s+\""), std::string::npos) << e;
  std::ifstream in(kQwen, std::ios::binary);
  if (in) {  // a real file cut short
    std::string head(100000, '\0');
    in.read(head.data(), std::streamsize(head.size()));
    e = load_error(head);
    EXPECT_NE(e.find("at byte 100000"), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace anetrain
