// AnckReader (the .anck checkpoint container), and for kind "model" the path every MODEL argument
// that is a checkpoint takes: load_model_checkpoint (ModelConfig from meta.config, then the
// tensors by the parameter table).
//
// The header CRC (bytes 12–15) is recomputed over the header before parsing whenever the length
// field fits the input: otherwise almost every mutation of the JSON would stop at the CRC check.
// (So the header-CRC mismatch branch itself is not exercised; the tensor CRCs are left as given.)
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "formats/anck.h"
#include "fuzz_common.h"
#include "train/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> buf(data, data + size);
  if (size >= 24) {
    uint64_t hlen;
    std::memcpy(&hlen, buf.data() + 16, 8);
    if (hlen <= size - 24) {
      const uint32_t crc = anetrain::crc32_of(buf.data() + 24, hlen);
      std::memcpy(buf.data() + 12, &crc, 4);
    }
  }
  const std::string path = anetrain_fuzz::write_input("model.anck", buf.data(), buf.size());
  try {
    anetrain::AnckReader r(path);
    for (const auto& t : r.tensors()) {
      std::vector<float> v(t.nbytes / 4 + 1);  // +1: never a null destination, even for 0 bytes
      r.read(t.name, t.shape, v.data());
    }
    if (r.kind() == "model") anetrain::load_model_checkpoint(path);
  } catch (const anetrain::Error&) {
  }
  return 0;
}
