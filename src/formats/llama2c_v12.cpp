// llama2.c "ak42" files, versions 1 (fp32) and 2 (Q8_0). Facts checked against the real
// stories260K_q80.bin: v2 stores each layer's matrix as its own int8 block immediately followed
// by that block's fp32 scales (runq.c's init_quantized_tensors walks them per layer), not one
// int8 run per tensor kind; the norms lead the body as fp32.
#include <cstring>

#include "core/error.h"
#include "formats/llama2c.h"

namespace anetrain {

namespace {
constexpr uint64_t kHeaderBytes = 256;
constexpr uint64_t kFlagOffset = 36;       // after magic, version, 7 × int32
constexpr uint64_t kGroupSizeOffset = 37;  // v2 only, right after the (unaligned) flag byte

// Bytes one chunk occupies: fp32, or in v2 a matrix's int8 values plus one fp32 scale per group.
uint64_t chunk_bytes(const Llama2cChunk& ch, int version, uint64_t gs) {
  if (version == 2 && ch.matrix) return ch.n + ch.n / gs * 4;
  return ch.n * 4;
}
}  // namespace

Ak42Layout read_ak42_layout(const MappedFile& f) {
  const std::string& path = f.path();
  f.require(0, kHeaderBytes, "llama2.c version 1/2 header (256 bytes)");
  const uint8_t* d = f.data();
  int32_t version;
  std::memcpy(&version, d + 4, 4);
  if (version != 1 && version != 2)
    fail_at(path, 4, "llama2.c \"ak42\" version " + std::to_string(version) +
                         " is not supported (this build reads versions 0, 1 and 2)");
  int32_t h[7];
  std::memcpy(h, d + 8, 28);
  const uint8_t flag = d[kFlagOffset];
  if (flag > 1) fail_at(path, kFlagOffset, "shared_classifier flag is " + std::to_string(flag) + ", expected 0 or 1");
  Ak42Layout L{llama2c_config(h, flag == 1, path, 8, f.size()), version, 0, {}, {}};
  const ModelConfig& c = L.cfg;
  int32_t gs = 0;
  if (version == 2) {
    std::memcpy(&gs, d + kGroupSizeOffset, 4);
    // Capped so that a group's int32 dot product cannot overflow (127² · 4096 < 2³¹).
    if (gs <= 0 || gs > 4096)
      fail_at(path, kGroupSizeOffset, "group_size " + std::to_string(gs) + " must be in 1..4096");
  }
  L.group = gs;
  // Size the body from the table alone; allocate the model only once the file is known to match.
  const ParamTable table(c);
  L.order = llama2c_body_order(table, c, 1);
  uint64_t body = 0;
  for (const Llama2cChunk& ch : L.order) {
    if (version == 2 && ch.matrix && ch.n % uint64_t(gs) != 0) {
      const ParamSpec* s = nullptr;
      for (const auto& sp : table.specs())
        if (sp.offset == ch.offset) s = &sp;
      fail_at(path, kGroupSizeOffset, "group_size " + std::to_string(gs) + " does not divide the " +
                                          std::to_string(ch.n) + " elements of " + (s ? s->name : "a matrix"));
    }
    // No tensor is larger than the file, so the byte sum below cannot overflow.
    if (ch.n > f.size()) f.require(kHeaderBytes + body, ch.n, "a llama2.c tensor");
    L.pos.push_back(kHeaderBytes + body);
    body += chunk_bytes(ch, version, uint64_t(gs));
  }
  f.require(kHeaderBytes, body, "llama2.c version " + std::to_string(version) + " weights for the header's config");
  if (f.size() != kHeaderBytes + body)
    fail_at(path, kHeaderBytes + body, "file has " + std::to_string(f.size() - kHeaderBytes - body) +
                                           " unexpected trailing bytes (header does not match the weights?)");
  return L;
}

std::unique_ptr<Model> load_llama2c_ak42(const MappedFile& f) {
  const Ak42Layout L = read_ak42_layout(f);
  const ModelConfig& c = L.cfg;
  const int version = L.version;
  const int32_t gs = L.group;
  const uint8_t* d = f.data();
  const std::vector<Llama2cChunk>& order = L.order;
  auto m = allocate_model(c, f.path());
  uint64_t pos = kHeaderBytes;
  for (const Llama2cChunk& ch : order) {
    float* dst = m->params.data() + ch.offset;
    if (version == 2 && ch.matrix) {
      // runq.c's dequantize: value = int8 · scale of its group, in fp32.
      const int8_t* q = reinterpret_cast<const int8_t*>(d + pos);
      const uint8_t* scales = d + pos + ch.n;  // not 4-byte aligned in general
      for (uint64_t g = 0; g < ch.n / uint64_t(gs); ++g) {
        float s;
        std::memcpy(&s, scales + 4 * g, 4);
        for (uint64_t j = g * uint64_t(gs); j < (g + 1) * uint64_t(gs); ++j) dst[j] = float(q[j]) * s;
      }
    } else {
      std::memcpy(dst, d + pos, ch.n * 4);
    }
    f.release(pos, chunk_bytes(ch, version, uint64_t(gs)));  // the file is never resident twice
    pos += chunk_bytes(ch, version, uint64_t(gs));
  }
  return m;
}

}  // namespace anetrain
