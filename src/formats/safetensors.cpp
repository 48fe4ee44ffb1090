#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace anetrain {

namespace {
constexpr uint64_t kMaxHeader = 100ull << 20;  // the reference implementation's cap

bool parse_dtype(const std::string& s, DType& out) {
  if (s == "F32") out = DType::f32;
  else if (s == "F16") out = DType::f16;
  else if (s == "BF16") out = DType::bf16;
  else return false;
  return true;
}
}  // namespace

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

size_t StTensor::numel() const {
  size_t n = 1;
  for (auto d : shape) n *= size_t(d);
  return n;
}

SafetensorsReader::SafetensorsReader(const std::string& path) : file_(path) {
  file_.require(0, 8, "safetensors header length");
  uint64_t hlen;
  std::memcpy(&hlen, file_.data(), 8);
  if (hlen > kMaxHeader) fail_at(path, 0, "safetensors header length " + std::to_string(hlen) + " exceeds 100 MB (not a safetensors file?)");
  file_.require(8, hlen, "safetensors JSON header");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(file_.data() + 8, file_.data() + 8 + hlen);
  } catch (const nlohmann::json::parse_error& e) {
    fail_at(path, 8 + (e.byte > 0 ? e.byte - 1 : 0), std::string("invalid safetensors JSON header: ") + e.what());
  } catch (const nlohmann::json::exception& e) {
    fail_at(path, 8, std::string("unreadable safetensors JSON header: ") + e.what());
  }
  if (!j.is_object()) fail_at(path, 8, "safetensors header is not a JSON object");
  const uint64_t data_start = 8 + hlen;
  const uint64_t data_size = file_.size() - data_start;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail_at(path, 8, "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m)
        if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
      continue;
    }
    auto bad = [&](const std::string& why) { fail_at(path, 8, "tensor '" + name + "': " + why); };
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      bad("entry needs dtype, shape and data_offsets");
    StTensor t{};
    if (!v["dtype"].is_string() || !parse_dtype(v["dtype"].get<std::string>(), t.dtype))
      bad("unsupported dtype " + v["dtype"].dump() + " (supported: F32, F16, BF16)");
    if (!v["shape"].is_array()) bad("shape must be an array");
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) bad("shape entries must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > (1ull << 40) / dim) bad("shape " + v["shape"].dump() + " is implausibly large");
      numel *= dim;
      t.shape.push_back(int64_t(dim));
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      bad("data_offsets must be [begin, end]");
    uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e) bad("data_offsets begin > end");
    if (e > data_size)
      fail_at(path, data_start + b, "tensor '" + name + "' ends at data byte " + std::to_string(e) +
                                        " but the data section has only " + std::to_string(data_size) +
                                        " bytes (truncated file?)");
    if (e - b != numel * dtype_size(t.dtype))
      bad("data_offsets span " + std::to_string(e - b) + " bytes but shape " + shape_str(t.shape) + " of " +
          dtype_name(t.dtype) + " needs " + std::to_string(numel * dtype_size(t.dtype)));
    t.begin = data_start + b;
    t.nbytes = e - b;
    if (t.nbytes) ranges.push_back({b, e});
    tensors_[name] = std::move(t);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      fail_at(path, data_start + ranges[i].first, "tensor data ranges overlap");
}

const StTensor& SafetensorsReader::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(path() + ": tensor '" + name + "' not found");
  return it->second;
}

void SafetensorsReader::read_f32(const std::string& name, const std::vector<int64_t>& expect, float* dst) const {
  size_t values = 1;  // as many "rows" as values: past the end, so every value is read
  for (int64_t d : expect) values *= size_t(std::max<int64_t>(d, 0));
  read_f32_rows(name, expect, 0, values, dst);
}

void SafetensorsReader::read_f32_rows(const std::string& name, const std::vector<int64_t>& expect, size_t r0,
                                      size_t rows, float* dst) const {
  const StTensor& t = info(name);
  if (t.shape != expect)
    fail(path() + ": tensor '" + name + "' has shape " + shape_str(t.shape) + ", expected " + shape_str(expect));
  const size_t all = t.numel(), cols = expect.empty() ? 1 : size_t(expect.back());
  const size_t first = std::min(all, r0 * cols), n = std::min(all - first, rows * cols);
  const uint8_t* src = file_.data() + t.begin + first * dtype_size(t.dtype);
  switch (t.dtype) {
    case DType::f32:
      if (n) std::memcpy(dst, src, n * 4);  // memcpy with a null dst is UB even for 0 bytes
      break;
    case DType::f16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = f16_to_f32(h);
      }
      break;
    case DType::bf16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
      }
      break;
  }
}

std::vector<float> SafetensorsReader::read_f32(const std::string& name) const {
  const StTensor& t = info(name);
  std::vector<float> out(t.numel());
  read_f32(name, t.shape, out.data());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<StWriteItem>& items, DType dtype,
                       const std::map<std::string, std::string>& metadata) {
  AtomicFile f(path);
  write_safetensors(f, items, dtype, metadata);
  f.commit();
}

void write_safetensors(AtomicFile& f, const std::vector<StWriteItem>& items, DType dtype,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h;
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const auto& it : items) {
    size_t numel = 1;
    for (auto d : it.shape) numel *= size_t(d);
    uint64_t nbytes = numel * dtype_size(dtype);
    h[it.name] = {{"dtype", dtype_name(dtype)}, {"shape", it.shape}, {"data_offsets", {off, off + nbytes}}};
    off += nbytes;
  }
  std::string header = h.dump();
  while (header.size() % 8) header.push_back(' ');
  const uint64_t hlen = header.size();
  f.write(&hlen, 8);
  f.write(header.data(), header.size());
  // Streamed in slices: no second copy of the whole model in memory.
  constexpr size_t kSlice = 1 << 16;
  std::vector<uint16_t> half;
  for (const auto& it : items) {
    size_t numel = 1;
    for (auto d : it.shape) numel *= size_t(d);
    if (dtype == DType::f32) {
      f.write(it.data, numel * 4);
      continue;
    }
    for (size_t b = 0; b < numel; b += kSlice) {
      const size_t e = std::min(numel, b + kSlice);
      half.resize(e - b);
      for (size_t i = b; i < e; ++i) half[i - b] = dtype == DType::f16 ? f32_to_f16(it.data[i]) : f32_to_bf16(it.data[i]);
      f.write(half.data(), half.size() * 2);
    }
  }
}

}  // namespace anetrain
