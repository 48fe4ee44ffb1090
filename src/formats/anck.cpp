#include "formats/anck.h"

#include <cstring>
#include <unordered_map>

#include <zlib.h>

#include "core/error.h"
#include "formats/safetensors.h"
#include "model/model.h"

namespace anetrain {

namespace {
constexpr char kMagic[8] = {'A', 'N', 'E', 'T', 'C', 'K', 'P', 'T'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kAlign = 64;
uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }
}  // namespace

uint32_t crc32_of(const void* data, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const Bytef* p = static_cast<const Bytef*>(data);
  while (n > 0) {  // zlib takes uInt lengths
    const uInt chunk = uInt(std::min<size_t>(n, 1u << 30));
    crc = crc32(crc, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return uint32_t(crc);
}

void write_anck(const std::string& path, const std::string& kind, const nlohmann::json& meta,
                const std::vector<AnckTensorIn>& tensors) {
  nlohmann::ordered_json header;
  header["kind"] = kind;
  header["meta"] = meta;
  header["tensors"] = nlohmann::json::array();
  std::vector<uint64_t> sizes;
  for (const auto& t : tensors) {
    uint64_t n = 1;
    for (auto d : t.shape) n *= uint64_t(d);
    sizes.push_back(n * 4);
    header["tensors"].push_back({{"name", t.name}, {"dtype", "F32"}, {"shape", t.shape}, {"offset", 0},
                                 {"nbytes", n * 4}, {"crc32", crc32_of(t.data, n * 4)}});
  }
  // Offsets depend on the header's length, which depends on the offsets' digits: iterate to a fixpoint.
  std::string text;
  for (int pass = 0; pass < 4; ++pass) {
    text = header.dump();
    uint64_t off = align_up(24 + text.size() + 32);  // slack so the next pass's digits still fit
    for (size_t i = 0; i < tensors.size(); ++i) {
      header["tensors"][i]["offset"] = off;
      off = align_up(off + sizes[i]);
    }
  }
  text = header.dump();
  const uint64_t first = tensors.empty() ? align_up(24 + text.size()) : header["tensors"][0]["offset"].get<uint64_t>();
  if (24 + text.size() > first) fail("internal: checkpoint header outgrew its slot");
  text.resize(first - 24, ' ');
  const uint32_t hcrc = crc32_of(text.data(), text.size());
  const uint64_t hlen = text.size();
  AtomicFile f(path);
  f.write(kMagic, 8);
  f.write(&kVersion, 4);
  f.write(&hcrc, 4);
  f.write(&hlen, 8);
  f.write(text.data(), text.size());
  static const char zeros[kAlign] = {};
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t off = header["tensors"][i]["offset"].get<uint64_t>();
    if (f.written() < off) f.write(zeros, off - f.written());
    f.write(tensors[i].data, sizes[i]);
  }
  f.commit();
}

AnckReader::AnckReader(const std::string& path) : file_(path) {
  file_.require(0, 24, "checkpoint preamble");
  const uint8_t* d = file_.data();
  if (std::memcmp(d, kMagic, 8) != 0) fail_at(path, 0, "not an anetrain checkpoint (bad magic)");
  uint32_t version, hcrc;
  uint64_t hlen;
  std::memcpy(&version, d + 8, 4);
  std::memcpy(&hcrc, d + 12, 4);
  std::memcpy(&hlen, d + 16, 8);
  if (version != kVersion)
    fail_at(path, 8, "checkpoint format version " + std::to_string(version) + " is not supported (this build reads 1)");
  if (hlen > (256ull << 20)) fail_at(path, 16, "checkpoint header length " + std::to_string(hlen) + " is implausible");
  file_.require(24, hlen, "checkpoint JSON header");
  if (crc32_of(d + 24, hlen) != hcrc) fail_at(path, 24, "checkpoint header CRC mismatch (file corrupted)");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(d + 24, d + 24 + hlen);
    kind_ = h.at("kind").get<std::string>();
    meta_ = h.at("meta");
    // nlohmann converts a double to an integer without a range check (UB), so every integer
    // field is type-checked before get<>.
    auto u64 = [&](const nlohmann::json& v, const char* what) -> uint64_t {
      if (!v.is_number_unsigned()) fail_at(path, 24, std::string("checkpoint header field '") + what + "' must be a non-negative integer");
      return v.get<uint64_t>();
    };
    for (const auto& t : h.at("tensors")) {
      AnckTensorInfo info{t.at("name").get<std::string>(), t.at("dtype").get<std::string>(), {},
                          u64(t.at("offset"), "offset"), u64(t.at("nbytes"), "nbytes"), 0};
      const uint64_t crc = u64(t.at("crc32"), "crc32");
      if (crc > UINT32_MAX) fail_at(path, 24, "checkpoint header field 'crc32' is out of range");
      info.crc32 = uint32_t(crc);
      if (!t.at("shape").is_array()) fail_at(path, 24, "tensor '" + info.name + "' shape must be an array");
      for (const auto& d : t.at("shape")) {
        const uint64_t dim = u64(d, "shape");
        if (dim > (1ull << 40)) fail_at(path, 24, "tensor '" + info.name + "' has an implausible dimension");
        info.shape.push_back(int64_t(dim));
      }
      tensors_.push_back(std::move(info));
    }
  } catch (const nlohmann::json::exception& e) {
    fail_at(path, 24, std::string("malformed checkpoint header: ") + e.what());
  }
  for (const auto& t : tensors_) {
    if (t.dtype != "F32") fail_at(path, 24, "tensor '" + t.name + "' has unsupported dtype " + t.dtype);
    uint64_t n = 1;
    for (auto s : t.shape) {
      if (s != 0 && n > (1ull << 40) / uint64_t(s))  // checked before multiplying: no wrap-around
        fail_at(path, 24, "tensor '" + t.name + "' shape is implausibly large");
      n *= uint64_t(s);
    }
    if (n * 4 != t.nbytes) fail_at(path, 24, "tensor '" + t.name + "' size does not match its shape");
    file_.require(t.offset, t.nbytes, "tensor '" + t.name + "'");
    if (crc32_of(d + t.offset, t.nbytes) != t.crc32)
      fail_at(path, t.offset, "tensor '" + t.name + "' CRC mismatch (file corrupted)");
  }
}

void check_anck_holds(const AnckReader& r, const ModelConfig& c) {
  double held = 0;
  std::unordered_map<std::string, const AnckTensorInfo*> by_name;
  for (const AnckTensorInfo& t : r.tensors()) {
    held += double(t.nbytes);
    by_name.emplace(t.name, &t);
  }
  check_claim_fits(c, r.path(), held, 4);  // anck tensors are fp32
  const ParamTable table(c);
  for (const ParamSpec& s : table.specs()) {
    auto it = by_name.find(s.name);
    if (it == by_name.end()) fail(r.path() + ": tensor '" + s.name + "', which the config (meta.config) needs, is missing");
    if (it->second->shape != s.shape)
      fail(r.path() + ": tensor '" + s.name + "' is " + shape_str(it->second->shape) + " in the file but the config " +
           "(meta.config) claims " + shape_str(s.shape) + "; refusing to allocate for it");
  }
}

const AnckTensorInfo* AnckReader::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

void AnckReader::read(const std::string& name, const std::vector<int64_t>& shape, float* dst) const {
  const AnckTensorInfo* t = find(name);
  if (!t) fail(path() + ": tensor '" + name + "' is missing");
  if (t->shape != shape)
    fail(path() + ": tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " + shape_str(shape));
  std::memcpy(dst, file_.data() + t->offset, t->nbytes);
}

}  // namespace anetrain
