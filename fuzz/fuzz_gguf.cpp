// GGUF: GgufReader (header, typed metadata, tensor infos, data ranges) and every tensor converted
// to fp32; then the three consumers of a reader: gguf_tokenizer (tokenizer.* keys), gguf_config
// (architecture keys) and load_gguf (tensor names and shapes → Model). A GGUF vocabulary that
// converts is also written as a llama2.c tokenizer.bin (what `anetrain convert` does) and read back.
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/gguf_vocab.h"
#include "fuzz_common.h"
#include "tokenizer/sp_bpe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = anetrain_fuzz::write_input("model.gguf", data, size);
  try {
    anetrain::GgufReader r(path);
    for (const auto& t : r.tensors()) {
      std::vector<float> v(t.numel());
      r.read_f32(t, t.shape, v.data());
    }
    try {
      anetrain::GgufTokenizer tok = anetrain::gguf_tokenizer(r);
      if (tok.model == "llama" && !tok.tokens.empty() && tok.scores.size() == tok.tokens.size()) {
        const std::string bin = anetrain_fuzz::scratch_dir() + "/tokenizer.bin";
        anetrain::write_gguf_tokenizer_as_llama2c(tok, bin);
        anetrain::load_llama2c_tokenizer(bin, 0);
      }
    } catch (const anetrain::Error&) {
    }
    try {
      anetrain::gguf_config(r);
    } catch (const anetrain::Error&) {
    }
    try {
      anetrain::load_gguf_packed(path);  // Q8_0 regrouped, BF16 copied
    } catch (const anetrain::Error&) {
    }
    anetrain::GgufTokenizer tok;
    anetrain::load_gguf(path, &tok);
  } catch (const anetrain::Error&) {
  }
  return 0;
}
