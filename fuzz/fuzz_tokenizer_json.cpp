// load_hf_tokenizer (tokenizer.json: normalizer, pre-tokenizer, decoder, BPE vocab and merges,
// added tokens, post-processor), then encode/decode with what was loaded.
#include <cstdint>

#include "core/error.h"
#include "fuzz_common.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer_exercise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = anetrain_fuzz::write_input("tokenizer.json", data, size);
  try {
    auto tok = anetrain::load_hf_tokenizer(path);
    anetrain_fuzz::exercise_tokenizer(*tok);
  } catch (const anetrain::Error&) {
  }
  return 0;
}
