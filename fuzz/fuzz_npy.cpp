// read_npy: the NumPy header (magic, version, dict with descr / fortran_order / shape) and the
// data size it implies.
#include <cstdint>

#include "core/error.h"
#include "formats/npy.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = anetrain_fuzz::write_input("input.npy", data, size);
  try {
    anetrain::NpyArray a = anetrain::read_npy(path);
    if (a.data.size() != size_t(a.numel()) * a.elem_size()) __builtin_trap();
  } catch (const anetrain::Error&) {
  }
  return 0;
}
