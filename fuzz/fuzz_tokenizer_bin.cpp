// load_llama2c_tokenizer (llama2.c tokenizer.bin: max_token_length, then score/length/bytes per
// id, read to the end of the file), then encode/decode with what was loaded.
#include <cstdint>

#include "core/error.h"
#include "fuzz_common.h"
#include "tokenizer/sp_bpe.h"
#include "tokenizer_exercise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = anetrain_fuzz::write_input("tokenizer.bin", data, size);
  try {
    auto tok = anetrain::load_llama2c_tokenizer(path, 0);
    anetrain_fuzz::exercise_tokenizer(*tok);
  } catch (const anetrain::Error&) {
  }
  return 0;
}
