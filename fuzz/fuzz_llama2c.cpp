// load_llama2c and load_blzt (the seed's checkpoints): the header, the config it implies, and the
// weights that must follow; a version-2 file also through the packed reader (int8 kept), decoded for one token on the cpu
// backend (the W8A8 kernels on whatever the file holds), and quantized from fp32 when it loads.
#include <cstdint>

#include "core/error.h"
#include "backends/cpu/cpu_backend.h"
#include "formats/blzt.h"
#include "formats/llama2c.h"
#include "gen/decoder.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = anetrain_fuzz::write_input("model.bin", data, size);
  try {
    auto m = anetrain::load_llama2c(path);
    if (m->params.size() < (size_t(1) << 16) && m->cfg.dim % 32 == 0) {
      try {
        anetrain::pack_model(std::move(m), anetrain::WeightFormat::q8_0);
      } catch (const anetrain::Error&) {
      }
    }
  } catch (const anetrain::Error&) {
  }
  try {
    anetrain::BlztMoments moments;
    anetrain::load_blzt(path, &moments);
  } catch (const anetrain::Error&) {
  }
  try {
    auto pm = anetrain::load_llama2c_v2_packed(path);
    if (pm->table.total() < (size_t(1) << 16)) {
      anetrain::CpuBackend cpu;
      anetrain::Decoder dec(cpu, *pm, 2);
      dec.feed(0);
    }
  } catch (const anetrain::Error&) {
  }
  return 0;
}
