// NumPy .npy files (format versions 1–3), C order, little-endian: the I/O of `anetrain mil run`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace anetrain {

struct NpyArray {
  std::string descr;           // "<f2", "<f4", "<i4", "|i1", "|b1"
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;   // raw little-endian elements
  size_t elem_size() const;
  int64_t numel() const;
};

NpyArray read_npy(const std::string& path);  // errors name the file and byte offset
void write_npy(const std::string& path, const NpyArray& a);  // atomic

}  // namespace anetrain
