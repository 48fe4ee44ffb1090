#include "formats/npy.h"

#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"

namespace anetrain {

size_t NpyArray::elem_size() const {
  if (descr == "<f2") return 2;
  if (descr == "<f4" || descr == "<i4") return 4;
  if (descr == "|i1" || descr == "|b1" || descr == "<i1" || descr == "|u1") return 1;
  fail("npy dtype '" + descr + "' is not supported (float16, float32, int32, int8, bool)");
}

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

// The value of 'key' in the header dict: a quoted string, True/False, or a parenthesised tuple.
std::string dict_value(const std::string& header, const std::string& key, const std::string& path, uint64_t at) {
  size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) fail_at(path, at, "npy header has no '" + key + "'");
  size_t colon = header.find(':', k);
  if (colon == std::string::npos) fail_at(path, at, "npy header: no value for '" + key + "'");
  size_t v = header.find_first_not_of(' ', colon + 1);
  if (v == std::string::npos) fail_at(path, at, "npy header: no value for '" + key + "'");
  char open = header[v];
  char close = open == '\'' ? '\'' : open == '(' ? ')' : ',';
  size_t end = header.find(close, v + 1);
  if (end == std::string::npos) fail_at(path, at, "npy header: unterminated value for '" + key + "'");
  return open == '\'' || open == '(' ? header.substr(v + 1, end - v - 1) : header.substr(v, end - v);
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  MappedFile f(path);
  f.require(0, 10, "npy magic and header length");
  const uint8_t* b = f.data();
  if (std::memcmp(b, "\x93NUMPY", 6) != 0) fail_at(path, 0, "not a NumPy .npy file (bad magic)");
  uint8_t major = b[6];
  uint64_t header_len, header_at;
  if (major == 1) {
    header_len = uint64_t(b[8]) | uint64_t(b[9]) << 8;
    header_at = 10;
  } else if (major == 2 || major == 3) {
    f.require(0, 12, "npy header length");
    uint32_t n;
    std::memcpy(&n, b + 8, 4);
    header_len = n;
    header_at = 12;
  } else {
    fail_at(path, 6, "npy format version " + std::to_string(major) + " is not supported (1, 2, 3)");
  }
  f.require(header_at, header_len, "npy header");
  std::string header(reinterpret_cast<const char*>(b + header_at), header_len);
  NpyArray a;
  a.descr = dict_value(header, "descr", path, header_at);
  if (a.descr == "<i1" || a.descr == "|u1") fail_at(path, header_at, "npy dtype '" + a.descr + "' is not supported");
  if (dict_value(header, "fortran_order", path, header_at) != "False")
    fail_at(path, header_at, "Fortran-ordered arrays are not supported (save with np.ascontiguousarray)");
  std::string dims = dict_value(header, "shape", path, header_at);
  size_t pos = 0;
  uint64_t elements = 1;
  while (pos < dims.size()) {
    size_t next = dims.find(',', pos);
    std::string d = dims.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    if (d.find_first_not_of(' ') != std::string::npos) {
      char* end = nullptr;
      long long v = std::strtoll(d.c_str(), &end, 10);
      if (v < 0 || v > (1LL << 40)) fail_at(path, header_at, "npy shape (" + dims + ") is invalid");
      // Each dimension is bounded, their product must be too (found by fuzz_npy: two 2^38-sized
      // dimensions overflowed numel()). No file this reads holds 2^48 elements.
      if (v != 0 && elements > (uint64_t(1) << 48) / uint64_t(v))
        fail_at(path, header_at, "npy shape (" + dims + ") has more elements than any file could hold");
      elements *= uint64_t(v);
      a.shape.push_back(v);
    }
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  uint64_t data_at = header_at + header_len;
  uint64_t bytes = uint64_t(a.numel()) * a.elem_size();
  f.require(data_at, bytes, "npy data");
  if (f.size() != data_at + bytes)
    fail_at(path, data_at + bytes, "file has " + std::to_string(f.size() - data_at - bytes) + " bytes past the array");
  a.data.assign(b + data_at, b + data_at + bytes);
  return a;
}

void write_npy(const std::string& path, const NpyArray& a) {
  std::string dims;
  for (int64_t d : a.shape) dims += std::to_string(d) + ", ";
  if (a.shape.size() > 1) dims.resize(dims.size() - 2);
  else if (a.shape.size() == 1) dims.resize(dims.size() - 1);
  std::string header = "{'descr': '" + a.descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Pad with spaces so the data starts 64-byte aligned; the header ends with a newline.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  out += char(header.size() & 0xff);
  out += char(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(a.data.data()), a.data.size());
  write_file_atomic(path, out.data(), out.size());
}

}  // namespace anetrain
