// GGUF v3 writer and the small value helpers. The header (metadata + tensor infos) is built in
// memory; tensor data is converted and streamed through AtomicFile in slices, so writing a large
// model never holds a second full copy of it.
#include <algorithm>
#include <cstring>
#include <set>

#include "core/error.h"
#include "formats/gguf.h"
#include "contract/packed.h"

namespace anetrain {

uint64_t GgufValue::count() const {
  if (type != GgufType::array) return 0;
  if (elem == GgufType::string) return strs.size();
  if (elem == GgufType::f32 || elem == GgufType::f64) return floats.size();
  if (elem == GgufType::array) return items.size();
  return ints.size();
}

GgufValue GgufValue::of_u32(uint32_t v) {
  GgufValue x;
  x.type = GgufType::u32;
  x.i = v;
  return x;
}
GgufValue GgufValue::of_i32(int32_t v) {
  GgufValue x;
  x.type = GgufType::i32;
  x.i = v;
  return x;
}
GgufValue GgufValue::of_f32(float v) {
  GgufValue x;
  x.type = GgufType::f32;
  x.f = v;
  return x;
}
GgufValue GgufValue::of_bool(bool v) {
  GgufValue x;
  x.type = GgufType::boolean;
  x.i = v;
  return x;
}
GgufValue GgufValue::of_str(std::string v) {
  GgufValue x;
  x.type = GgufType::string;
  x.s = std::move(v);
  return x;
}
GgufValue GgufValue::of_strs(std::vector<std::string> v) {
  GgufValue x;
  x.type = GgufType::array;
  x.elem = GgufType::string;
  x.strs = std::move(v);
  return x;
}
GgufValue GgufValue::of_f32s(const std::vector<float>& v) {
  GgufValue x;
  x.type = GgufType::array;
  x.elem = GgufType::f32;
  x.floats.assign(v.begin(), v.end());
  return x;
}
GgufValue GgufValue::of_i32s(const std::vector<int32_t>& v) {
  GgufValue x;
  x.type = GgufType::array;
  x.elem = GgufType::i32;
  x.ints.assign(v.begin(), v.end());
  return x;
}

size_t GgufTensorInfo::numel() const {
  size_t n = 1;
  for (auto d : shape) n *= size_t(d);
  return n;
}

std::string ggml_type_name(uint32_t t) {
  static const char* names[] = {"F32",   "F16",    "Q4_0",   "Q4_1",    "Q4_2", "Q4_3",   "Q5_0",  "Q5_1",
                                "Q8_0",  "Q8_1",   "Q2_K",   "Q3_K",    "Q4_K", "Q5_K",   "Q6_K",  "Q8_K",
                                "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
                                "I8",    "I16",    "I32",    "I64",     "F64",  "IQ1_M",  "BF16"};
  if (t < sizeof(names) / sizeof(names[0])) return names[t];
  return "unknown";
}

namespace {

template <typename T> void put(std::string& out, T v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
void put_str(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void put_scalar(std::string& out, GgufType t, int64_t i, double f) {
  switch (t) {
    case GgufType::u8: case GgufType::boolean: put<uint8_t>(out, uint8_t(i)); break;
    case GgufType::i8: put<int8_t>(out, int8_t(i)); break;
    case GgufType::u16: put<uint16_t>(out, uint16_t(i)); break;
    case GgufType::i16: put<int16_t>(out, int16_t(i)); break;
    case GgufType::u32: put<uint32_t>(out, uint32_t(i)); break;
    case GgufType::i32: put<int32_t>(out, int32_t(i)); break;
    case GgufType::u64: put<uint64_t>(out, uint64_t(i)); break;
    case GgufType::i64: put<int64_t>(out, i); break;
    case GgufType::f32: put<float>(out, float(f)); break;
    case GgufType::f64: put<double>(out, f); break;
    default: fail("internal: GGUF scalar of non-scalar type");
  }
}

void put_value(std::string& out, const GgufValue& v) {
  if (v.type == GgufType::string) return put_str(out, v.s);
  if (v.type != GgufType::array) return put_scalar(out, v.type, v.i, v.f);
  put<uint32_t>(out, uint32_t(v.elem));
  put<uint64_t>(out, v.count());
  if (v.elem == GgufType::string)
    for (const auto& s : v.strs) put_str(out, s);
  else if (v.elem == GgufType::f32 || v.elem == GgufType::f64)
    for (double f : v.floats) put_scalar(out, v.elem, 0, f);
  else if (v.elem == GgufType::array)
    for (const auto& item : v.items) put_value(out, item);
  else
    for (int64_t i : v.ints) put_scalar(out, v.elem, i, 0);
}

uint64_t tensor_bytes(GgmlType t, uint64_t n) {
  if (t == GgmlType::q8_0) return n / 32 * 34;  // per block: f16 scale + 32 int8
  return n * (t == GgmlType::f32 ? 4 : 2);
}

}  // namespace

void write_gguf(const std::string& path, const std::vector<GgufKV>& kv, const std::vector<GgufTensorOut>& tensors,
                uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1))) fail(path + ": GGUF alignment must be a power of two");
  std::set<std::string> keys, names;
  std::string h;
  put<uint32_t>(h, 0x46554747);  // "GGUF"
  put<uint32_t>(h, 3);
  put<uint64_t>(h, tensors.size());
  put<uint64_t>(h, kv.size());
  for (const GgufKV& e : kv) {
    if (!keys.insert(e.key).second) fail(path + ": internal: duplicate GGUF key '" + e.key + "'");
    put_str(h, e.key);
    put<uint32_t>(h, uint32_t(e.value.type));
    put_value(h, e.value);
  }
  std::vector<uint64_t> sizes;
  uint64_t off = 0;
  for (const GgufTensorOut& t : tensors) {
    if (t.type == GgmlType::q8_0 && (t.shape.empty() || t.shape.back() % 32 != 0))
      fail(path + ": tensor '" + t.name + "' cannot be Q8_0: its rows are not a multiple of 32 long");
    if (!names.insert(t.name).second) fail(path + ": internal: duplicate GGUF tensor '" + t.name + "'");
    put_str(h, t.name);
    put<uint32_t>(h, uint32_t(t.shape.size()));
    uint64_t n = 1;
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) {  // innermost first
      put<uint64_t>(h, uint64_t(*it));
      n *= uint64_t(*it);
    }
    put<uint32_t>(h, uint32_t(t.type));
    put<uint64_t>(h, off);
    sizes.push_back(n);
    off += (tensor_bytes(t.type, n) + alignment - 1) / alignment * alignment;
  }
  h.resize((h.size() + alignment - 1) / alignment * alignment, '\0');

  AtomicFile f(path);
  f.write(h.data(), h.size());
  std::vector<uint16_t> half;
  const std::string zeros(alignment, '\0');
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorOut& t = tensors[i];
    if (t.type == GgmlType::f32) {
      f.write(t.data, sizes[i] * 4);
    } else if (t.type == GgmlType::q8_0) {
      constexpr size_t kBlocks = 1 << 12;
      std::vector<int8_t> q(kBlocks * 32);
      std::vector<float> d(kBlocks);
      std::vector<uint8_t> out(kBlocks * 34);
      for (size_t b = 0; b < sizes[i] / 32; b += kBlocks) {
        const size_t nb = std::min<size_t>(sizes[i] / 32 - b, kBlocks);
        quantize_q8_0_f16_scales(t.data + b * 32, nb * 32, q.data(), d.data());
        for (size_t j = 0; j < nb; ++j) {
          const uint16_t h = f32_to_f16(d[j]);
          std::memcpy(&out[j * 34], &h, 2);
          std::memcpy(&out[j * 34 + 2], &q[j * 32], 32);
        }
        f.write(out.data(), nb * 34);
      }
    } else {
      constexpr size_t kSlice = 1 << 16;
      for (size_t b = 0; b < sizes[i]; b += kSlice) {
        const size_t e = std::min<size_t>(sizes[i], b + kSlice);
        half.resize(e - b);
        for (size_t j = b; j < e; ++j)
          half[j - b] = t.type == GgmlType::f16 ? f32_to_f16(t.data[j]) : f32_to_bf16(t.data[j]);
        f.write(half.data(), half.size() * 2);
      }
    }
    const uint64_t pad = (alignment - tensor_bytes(t.type, sizes[i]) % alignment) % alignment;
    f.write(zeros.data(), pad);
  }
  f.commit();
}

}  // namespace anetrain
