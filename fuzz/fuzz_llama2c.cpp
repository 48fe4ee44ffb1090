// load_llama2c: the 7-int32 header, the config it implies, and the weights that must follow.
#include <cstdint>

#include "core/error.h"
#include "formats/llama2c.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = anetrain_fuzz::write_input("model.bin", data, size);
  try {
    auto m = anetrain::load_llama2c(path);
    (void)m;
  } catch (const anetrain::Error&) {
  }
  return 0;
}
