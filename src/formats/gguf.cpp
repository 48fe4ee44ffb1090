// GGUF reader. Version 1 differs from 2/3 only in width: its counts, string lengths and tensor
// dims are u32 where later versions use u64 (offsets are u64 in all three). Every count is checked
// against the bytes left before anything is reserved, so a hostile "2^60 tokens" is an Error.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"

namespace anetrain {

namespace {
constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxArrayDepth = 4;        // arrays of arrays are legal; deeper nesting is only an attack
constexpr uint64_t kMaxNumel = 1ull << 40;

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
    case GgufType::u16: case GgufType::i16: return 2;
    case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
    case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
    default: return 0;
  }
}

// A read position with the file's width rules; every read is bounds-checked.
struct Cursor {
  const MappedFile& f;
  bool wide;  // v2/v3: u64 lengths and counts; v1: u32
  uint64_t pos = 0;

  template <typename T> T get(const char* what) {
    f.require(pos, sizeof(T), what);
    T v;
    std::memcpy(&v, f.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  uint64_t count(const char* what) { return wide ? get<uint64_t>(what) : get<uint32_t>(what); }
  uint64_t left() const { return f.size() - pos; }
  std::string str(const char* what) {
    const uint64_t n = count(what);
    f.require(pos, n, what);
    std::string s(reinterpret_cast<const char*>(f.data() + pos), size_t(n));
    pos += n;
    return s;
  }
};

// Smallest encoding of one element, to bound a count by the bytes left.
uint64_t min_elem_size(GgufType t, bool wide) {
  if (t == GgufType::string) return wide ? 8 : 4;
  if (t == GgufType::array) return 4 + (wide ? 8 : 4);
  return scalar_size(t);
}

int64_t read_int(Cursor& c, GgufType t) {
  switch (t) {
    case GgufType::u8: return c.get<uint8_t>("u8 value");
    case GgufType::i8: return c.get<int8_t>("i8 value");
    case GgufType::u16: return c.get<uint16_t>("u16 value");
    case GgufType::i16: return c.get<int16_t>("i16 value");
    case GgufType::u32: return c.get<uint32_t>("u32 value");
    case GgufType::i32: return c.get<int32_t>("i32 value");
    case GgufType::u64: return int64_t(c.get<uint64_t>("u64 value"));
    case GgufType::i64: return c.get<int64_t>("i64 value");
    default: {
      const uint64_t at = c.pos;
      const uint8_t b = c.get<uint8_t>("bool value");
      if (b > 1) fail_at(c.f.path(), at, "bool value is " + std::to_string(b) + ", expected 0 or 1");
      return b;
    }
  }
}

bool is_int_type(GgufType t) { return scalar_size(t) != 0 && t != GgufType::f32 && t != GgufType::f64; }

GgufType read_type(Cursor& c, const char* what) {
  const uint64_t at = c.pos;
  const uint32_t t = c.get<uint32_t>(what);
  if (t > uint32_t(GgufType::f64)) fail_at(c.f.path(), at, "unknown metadata value type " + std::to_string(t));
  return GgufType(t);
}

GgufValue read_value(Cursor& c, GgufType t, int depth) {
  GgufValue v;
  v.type = t;
  if (t == GgufType::string) {
    v.s = c.str("string value");
  } else if (t == GgufType::f32) {
    v.f = c.get<float>("f32 value");
  } else if (t == GgufType::f64) {
    v.f = c.get<double>("f64 value");
  } else if (t != GgufType::array) {
    v.i = read_int(c, t);
  } else {
    const uint64_t at = c.pos;
    if (depth >= kMaxArrayDepth) fail_at(c.f.path(), at, "arrays nested deeper than " + std::to_string(kMaxArrayDepth));
    v.elem = read_type(c, "array element type");
    const uint64_t n = c.count("array length");
    if (n > c.left() / min_elem_size(v.elem, c.wide))
      fail_at(c.f.path(), at, "array of " + std::to_string(n) + " elements cannot fit in the " +
                                  std::to_string(c.left()) + " bytes left (corrupt or truncated file)");
    for (uint64_t k = 0; k < n; ++k) {
      if (v.elem == GgufType::string) v.strs.push_back(c.str("string array element"));
      else if (v.elem == GgufType::f32) v.floats.push_back(c.get<float>("f32 array element"));
      else if (v.elem == GgufType::f64) v.floats.push_back(c.get<double>("f64 array element"));
      else if (v.elem == GgufType::array) v.items.push_back(read_value(c, GgufType::array, depth + 1));
      else v.ints.push_back(read_int(c, v.elem));
    }
  }
  return v;
}

// The shortest decimal that reads back as the same float: GGUF stores eps and θ as f32, and
// 1e-5 should come back as 1e-5, not 9.99999974737875e-06.
double shortest(float x) {
  char buf[32];
  for (int p = 1; p <= 9; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, double(x));
    if (std::strtof(buf, nullptr) == x) return std::strtod(buf, nullptr);
  }
  return x;
}
}  // namespace

GgufReader::GgufReader(const std::string& path) : file_(path) {
  file_.require(0, 8, "GGUF magic and version");
  uint32_t magic;
  std::memcpy(&magic, file_.data(), 4);
  std::memcpy(&version_, file_.data() + 4, 4);
  if (magic != kMagic) fail_at(path, 0, "not a GGUF file (bad magic)");
  if (version_ == 0 || version_ > 3)
    fail_at(path, 4, "GGUF version " + std::to_string(version_) +
                         ((version_ & 0xffff) == 0 ? " (a big-endian file?)" : "") +
                         " is not supported (this build reads 1, 2 and 3)");
  Cursor c{file_, version_ >= 2, 8};
  const uint64_t n_tensors = c.count("tensor count");
  const uint64_t n_kv = c.count("metadata count");
  // Each key/value takes at least a key length, a type and one byte; each tensor info a name
  // length, n_dims, type and offset. Counts beyond that cannot be honest.
  if (n_kv > c.left() / (min_elem_size(GgufType::string, c.wide) + 5))
    fail_at(path, c.wide ? 16 : 12, "metadata count " + std::to_string(n_kv) + " cannot fit in the file");
  if (n_tensors > c.left() / (min_elem_size(GgufType::string, c.wide) + 16))
    fail_at(path, 8, "tensor count " + std::to_string(n_tensors) + " cannot fit in the file");

  std::map<std::string, size_t> seen;
  for (uint64_t k = 0; k < n_kv; ++k) {
    const uint64_t at = c.pos;
    GgufKV kv;
    kv.key = c.str("metadata key");
    if (!seen.emplace(kv.key, kv_.size()).second) fail_at(path, at, "duplicate metadata key '" + kv.key + "'");
    const GgufType t = read_type(c, "metadata value type");
    kv.offset = c.pos;
    kv.value = read_value(c, t, 0);
    kv_.push_back(std::move(kv));
  }
  if (const GgufKV* a = find("general.alignment")) {
    if (!is_int_type(a->value.type) || a->value.i <= 0 || a->value.i > (1 << 20) || (a->value.i & (a->value.i - 1)))
      fail_at(path, a->offset, "general.alignment must be a power of two ≤ 2^20");
    alignment_ = uint32_t(a->value.i);
  }

  std::map<std::string, size_t> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t{};
    t.info_offset = c.pos;
    t.name = c.str("tensor name");
    if (!names.emplace(t.name, tensors_.size()).second)
      fail_at(path, t.info_offset, "duplicate tensor '" + t.name + "'");
    const uint32_t n_dims = c.get<uint32_t>("tensor n_dims");
    if (n_dims > 4) fail_at(path, c.pos - 4, "tensor '" + t.name + "' has " + std::to_string(n_dims) + " dims (at most 4)");
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = c.wide ? c.get<uint64_t>("tensor dim") : c.get<uint32_t>("tensor dim");
      if (dim == 0 || dim > kMaxNumel / numel)
        fail_at(path, t.info_offset, "tensor '" + t.name + "' has an empty or implausibly large dim " + std::to_string(dim));
      numel *= dim;
      t.shape.insert(t.shape.begin(), int64_t(dim));  // innermost first in the file
    }
    const uint64_t type_at = c.pos;
    const uint32_t type = c.get<uint32_t>("tensor type");
    const uint64_t rel = c.get<uint64_t>("tensor offset");
    t.type = GgmlType(type);
    if (type == uint32_t(GgmlType::f32)) t.nbytes = numel * 4;
    else if (type == uint32_t(GgmlType::f16) || type == uint32_t(GgmlType::bf16)) t.nbytes = numel * 2;
    else if (type == uint32_t(GgmlType::q8_0) && !t.shape.empty() && t.shape.back() % 32 == 0) t.nbytes = numel / 32 * 34;
    else if (type == uint32_t(GgmlType::q8_0))
      fail_at(path, type_at, "tensor '" + t.name + "' is Q8_0 but its rows are not a multiple of 32 long");
    else
      fail_at(path, type_at, "tensor '" + t.name + "' has ggml type " + std::to_string(type) + " (" +
                                 ggml_type_name(type) + "), which this build does not read (supported: F32, F16, BF16, Q8_0)");
    if (rel % alignment_ != 0)
      fail_at(path, t.info_offset, "tensor '" + t.name + "' offset " + std::to_string(rel) + " is not a multiple of the alignment " +
                                       std::to_string(alignment_));
    t.offset = rel;  // made absolute below, once the data section's start is known
    tensors_.push_back(std::move(t));
  }
  const uint64_t data_start = (c.pos + alignment_ - 1) / alignment_ * alignment_;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& t : tensors_) {
    if (data_start > file_.size() || t.offset > file_.size() - data_start ||
        t.nbytes > file_.size() - data_start - t.offset)
      fail_at(path, t.info_offset, "tensor '" + t.name + "' data [" + std::to_string(t.offset) + ", +" +
                                       std::to_string(t.nbytes) + ") runs past the end of the file (data starts at byte " +
                                       std::to_string(data_start) + ", file size " + std::to_string(file_.size()) + "; truncated?)");
    t.offset += data_start;
    ranges.push_back({t.offset, t.offset + t.nbytes});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) fail_at(path, ranges[i].first, "tensor data ranges overlap");
}

const GgufKV* GgufReader::find(const std::string& key) const {
  for (const auto& kv : kv_)
    if (kv.key == key) return &kv;
  return nullptr;
}

const GgufTensorInfo* GgufReader::tensor(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

int64_t GgufReader::get_int(const std::string& key, int64_t lo, int64_t hi) const {
  const GgufKV* kv = find(key);
  if (!kv) fail(path() + ": GGUF metadata lacks required key '" + key + "'");
  return get_int(key, lo, hi, 0);
}

int64_t GgufReader::get_int(const std::string& key, int64_t lo, int64_t hi, int64_t dflt) const {
  const GgufKV* kv = find(key);
  if (!kv) return dflt;
  const GgufValue& v = kv->value;
  if (!is_int_type(v.type) || v.type == GgufType::boolean)
    fail_at(path(), kv->offset, "metadata '" + key + "' must be an integer");
  // A u64 above INT64_MAX arrives negative here and fails the range check, as it should.
  if (v.i < lo || v.i > hi)
    fail_at(path(), kv->offset, "metadata '" + key + "' = " + std::to_string(v.i) + " is outside [" +
                                    std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v.i;
}

double GgufReader::get_float(const std::string& key, double dflt) const {
  const GgufKV* kv = find(key);
  if (!kv) return dflt;
  if (kv->value.type == GgufType::f32) return shortest(float(kv->value.f));
  if (kv->value.type == GgufType::f64) return kv->value.f;
  fail_at(path(), kv->offset, "metadata '" + key + "' must be a float");
}

std::string GgufReader::get_str(const std::string& key) const {
  const GgufKV* kv = find(key);
  if (!kv) fail(path() + ": GGUF metadata lacks required key '" + key + "'");
  if (kv->value.type != GgufType::string) fail_at(path(), kv->offset, "metadata '" + key + "' must be a string");
  return kv->value.s;
}

void GgufReader::read_f32(const GgufTensorInfo& t, const std::vector<int64_t>& expect, float* dst) const {
  if (t.shape != expect)
    fail_at(path(), t.info_offset, "tensor '" + t.name + "' has shape " + shape_str(t.shape) + ", expected " +
                                       shape_str(expect));
  const uint8_t* src = file_.data() + t.offset;
  const size_t n = t.numel();
  uint16_t h;
  switch (t.type) {
    case GgmlType::f32: std::memcpy(dst, src, n * 4); break;
    case GgmlType::f16:
      for (size_t i = 0; i < n; ++i, src += 2) dst[i] = (std::memcpy(&h, src, 2), f16_to_f32(h));
      break;
    case GgmlType::bf16:
      for (size_t i = 0; i < n; ++i, src += 2) dst[i] = (std::memcpy(&h, src, 2), bf16_to_f32(h));
      break;
    case GgmlType::q8_0:
      // Blocks of 32: an f16 scale, then 32 int8; ggml's dequantize is int8 · scale in fp32.
      for (size_t b = 0; b < n / 32; ++b, src += 34) {
        std::memcpy(&h, src, 2);
        const float d = f16_to_f32(h);
        for (int j = 0; j < 32; ++j) dst[b * 32 + j] = float(int8_t(src[2 + j])) * d;
      }
      break;
  }
  file_.release(t.offset, t.nbytes);  // copied out: the file is never resident twice
}

}  // namespace anetrain
