// SafetensorsReader: header length, JSON header, every entry's dtype/shape/offsets; then every
// tensor converted to fp32 (read_f32 trusts what the constructor validated).
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "formats/safetensors.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = anetrain_fuzz::write_input("model.safetensors", data, size);
  try {
    anetrain::SafetensorsReader r(path);
    for (const auto& [name, t] : r.tensors()) {
      std::vector<float> v = r.read_f32(name);
      if (v.size() != t.numel()) __builtin_trap();
    }
  } catch (const anetrain::Error&) {
  }
  return 0;
}
