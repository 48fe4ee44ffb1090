// A GGUF's byte-level ("gpt2") vocabulary read back as a tokenizer: the real Qwen3 tokenizer.json
// written into a GGUF (as `merge`/`convert` write one) tokenizes and decodes every text exactly as
// the tokenizer.json does — the ids of a Qwen3 fine-tune's GGUF, with no tokenizer.json beside it.
// Also: BOS as llama.cpp's Qwen GGUFs state it (a BOS id, add_bos_token false), the chat template
// carried along, and the refusals (an unknown pre-tokenizer, a merge of a missing piece) naming the file.
#include <zlib.h>

#include "format_test_util.h"
#include "formats/gguf.h"
#include "formats/gguf_vocab.h"
#include "tokenizer/hf_tokenizer.h"

namespace anetrain {
namespace {

using namespace fmt_test;
const std::string kQwen = kAssets + "/hf/qwen3/tokenizer.json";
const std::string kQwenConfig = kAssets + "/hf/qwen3/tokenizer_config.json";

// A model with Qwen3's vocabulary rows and nothing else of size: the GGUF is about its tokenizer.
std::unique_ptr<Model> qwen_vocab_model() {
  ModelConfig c = tiny_qwen3();
  c.dim = 8, c.head_dim = 4, c.hidden_dim = 8, c.n_layers = 1;
  c.vocab_size = 151936;
  return random_model(c, 3);
}

std::string gunzip_head(const std::string& path, size_t bytes) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return "";
  std::string out(bytes, '\0');
  const int n = gzread(f, out.data(), unsigned(bytes));
  gzclose(f);
  out.resize(n > 0 ? size_t(n) : 0);
  while (!out.empty() && (uint8_t(out.back()) & 0xC0) == 0x80) out.pop_back();  // whole characters only
  if (!out.empty() && uint8_t(out.back()) >= 0xC0) out.pop_back();
  return out;
}

void expect_error_naming(const std::function<void()>& fn, const std::vector<std::string>& needles) {
  for (const std::string& needle : needles) expect_error(fn, needle);
}

const GgufKV* other(const GgufTokenizer& t, const std::string& key) {
  for (const GgufKV& kv : t.other)
    if (kv.key == key) return &kv;
  return nullptr;
}

TEST(GgufByteLevel, Qwen3VocabularyTokenizesAsItsTokenizerJson) {
  if (!fs::exists(kQwen)) GTEST_SKIP() << kQwen << " missing";
  fs::path dir = scratch("gguf_bpe");
  const GgufTokenizer written = gguf_tokenizer_from_file(kQwen, 151936);
  save_gguf(*qwen_vocab_model(), (dir / "q.gguf").string(), DType::f32, &written);
  const std::string path = (dir / "q.gguf").string();
  EXPECT_TRUE(gguf_tokenizer_readable(path));

  // What llama.cpp and chat front ends read from it.
  const GgufTokenizer stored = gguf_tokenizer(GgufReader(path));
  EXPECT_EQ(stored.model, "gpt2");
  EXPECT_EQ(stored.pre, "qwen2");
  ASSERT_NE(other(stored, "tokenizer.ggml.add_bos_token"), nullptr);
  EXPECT_EQ(other(stored, "tokenizer.ggml.add_bos_token")->value.i, 0);
  ASSERT_NE(other(stored, "tokenizer.chat_template"), nullptr);
  EXPECT_NE(other(stored, "tokenizer.chat_template")->value.s.find("<|im_start|>"), std::string::npos);
  EXPECT_NE(slurp(kQwenConfig).find("\"chat_template\""), std::string::npos);

  const auto hf = load_hf_tokenizer(kQwen);
  const auto gg = load_gguf_tokenizer(path, 151936);
  EXPECT_EQ(gg->vocab_size(), 151936);  // padded to one token per embedding row
  EXPECT_EQ(gg->bos_id(), hf->bos_id());
  EXPECT_EQ(gg->eos_id(), hf->eos_id());
  for (int32_t id : {0, 9707, 1879, 151643, 151645, 151667, 151668})
    EXPECT_EQ(gg->is_special(id), hf->is_special(id)) << id;
  EXPECT_EQ(gg->piece_id("<|im_end|>"), 151645);
  std::vector<std::string> texts = {
      "Hello world",
      "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
      "  Caf\u00e9 \U0001F600 12,345\r\n\tI'M \u65e5\u672c  ",
      "e\u0301 and \u00e9",  // NFC first, as Qwen's tokenizer.json normalizes
      "def f(x):\n    return x**2  # \u0441\u043f\u0430\u0441\u0438\u0431\u043e\n\n\n",
  };
  for (const char* corpus : {"/corpora/war-and-peace.txt.gz", "/corpora/brown-plain.txt.gz"}) {
    const std::string text = gunzip_head(kAssets + corpus, 60000);
    ASSERT_GT(text.size(), 50000u) << corpus;
    texts.push_back(text);
  }
  for (const std::string& text : texts) {
    const std::vector<int32_t> ids = hf->encode(text);
    ASSERT_EQ(gg->encode(text), ids) << text.substr(0, 80);
    EXPECT_EQ(gg->decode(ids), hf->decode(ids));
    std::string stream;
    for (size_t i = 0; i < std::min<size_t>(ids.size(), 400); ++i)
      stream += gg->decode_step(i ? ids[i - 1] : -1, ids[i]);
    std::string want;
    for (size_t i = 0; i < std::min<size_t>(ids.size(), 400); ++i)
      want += hf->decode_step(i ? ids[i - 1] : -1, ids[i]);
    EXPECT_EQ(stream, want);
  }
  fs::remove_all(dir);
}

TEST(GgufByteLevel, BosFollowsAddBosTokenAndUnknownSplitsAreRefused) {
  if (!fs::exists(kQwen)) GTEST_SKIP() << kQwen << " missing";
  fs::path dir = scratch("gguf_bpe_bos");
  auto m = qwen_vocab_model();
  GgufTokenizer t = gguf_tokenizer_from_file(kQwen, 151936);
  // As llama.cpp's converter states a Qwen vocabulary: BOS <|endoftext|>, never added.
  t.bos_id = 151643;
  save_gguf(*m, (dir / "no_bos.gguf").string(), DType::f32, &t);
  EXPECT_EQ(load_gguf_tokenizer((dir / "no_bos.gguf").string(), 0)->bos_id(), -1);
  for (GgufKV& kv : t.other)
    if (kv.key == "tokenizer.ggml.add_bos_token") kv.value = GgufValue::of_bool(true);
  save_gguf(*m, (dir / "bos.gguf").string(), DType::f32, &t);
  const auto with_bos = load_gguf_tokenizer((dir / "bos.gguf").string(), 0);
  EXPECT_EQ(with_bos->bos_id(), 151643);
  EXPECT_EQ(with_bos->encode("Hello world", true), (std::vector<int32_t>{151643, 9707, 1879}));
  // Without the key, as llama.cpp decides: a Qwen ("qwen2") vocabulary adds none.
  std::erase_if(t.other, [](const GgufKV& kv) { return kv.key == "tokenizer.ggml.add_bos_token"; });
  save_gguf(*m, (dir / "unsaid.gguf").string(), DType::f32, &t);
  EXPECT_EQ(load_gguf_tokenizer((dir / "unsaid.gguf").string(), 0)->bos_id(), -1);

  // A split rule anetrain does not implement is refused by name, and the GGUF's vocabulary is not
  // offered as the model's tokenizer (a tokenizer.json beside it may be).
  GgufTokenizer other_split = gguf_tokenizer_from_file(kQwen, 151936);
  other_split.pre = "deepseek-llm";
  const std::string refused = (dir / "other_split.gguf").string();
  save_gguf(*m, refused, DType::f32, &other_split);
  EXPECT_FALSE(gguf_tokenizer_readable(refused));
  expect_error_naming([&] { load_gguf_tokenizer(refused, 0); }, {refused, "\"deepseek-llm\"", "-z"});

  GgufTokenizer bad_merge = gguf_tokenizer_from_file(kQwen, 151936);
  bad_merge.merges[5] = "\u0120no-such-piece t";
  const std::string broken = (dir / "bad_merge.gguf").string();
  save_gguf(*m, broken, DType::f32, &bad_merge);
  expect_error_naming([&] { load_gguf_tokenizer(broken, 0); }, {broken, "tokenizer.ggml.merges[5]", "is not a token"});
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anetrain
