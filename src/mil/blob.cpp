#include "mil/blob.h"

#include <cstring>
#include <fstream>

#include "core/dtype.h"
#include "core/mapped_file.h"

namespace anetrain::mil {
namespace {

constexpr size_t kHeader = 64;
constexpr uint32_t kChunkMagic = 0xDEADBEEFu;

void put_u32(std::vector<uint8_t>& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }
uint32_t get_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

size_t elem_bytes(ElemType e) {
  switch (e) {
    case ElemType::fp16: return 2;
    case ElemType::fp32: case ElemType::int32: return 4;
    case ElemType::int8: case ElemType::boolean: return 1;
    case ElemType::uint64: return 8;
    case ElemType::string: break;
  }
  mil_fail(std::string("no storage size for ") + elem_name(e));
}

BlobWriter::BlobWriter() : bytes_(kHeader, 0) {
  bytes_[0] = 1;
  bytes_[4] = 2;
}

uint64_t BlobWriter::add_chunk(const void* data, size_t n) {
  if (n > 0xffffffffu) mil_fail("a blob chunk holds at most 4 GiB");
  uint64_t chunk = bytes_.size();
  bytes_.resize(chunk + kHeader, 0);
  put_u32(bytes_, chunk, kChunkMagic);
  put_u32(bytes_, chunk + 4, 1);
  put_u32(bytes_, chunk + 8, uint32_t(n));
  if (chunk + kHeader > 0xffffffffu) mil_fail("a blob file holds at most 4 GiB");
  put_u32(bytes_, chunk + 16, uint32_t(chunk + kHeader));
  const auto* p = static_cast<const uint8_t*>(data);
  bytes_.insert(bytes_.end(), p, p + n);
  bytes_.resize((bytes_.size() + kHeader - 1) / kHeader * kHeader, 0);
  return chunk;
}

uint64_t BlobWriter::add_fp16(const std::vector<uint16_t>& halves) { return add_chunk(halves.data(), halves.size() * 2); }
uint64_t BlobWriter::add_fp16(const float* values, size_t n) {
  std::vector<uint16_t> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = f32_to_f16(values[i]);
  return add_fp16(h);
}
uint64_t BlobWriter::add_int8(const std::vector<int8_t>& values) { return add_chunk(values.data(), values.size()); }

void BlobWriter::write(const std::string& path) const {
  write_file_atomic(path, bytes_.data(), bytes_.size());
}

std::string blob_relative_path(const std::string& blob_path) {
  const std::string root = "@model_path/";
  if (blob_path.rfind(root, 0) != 0) mil_fail("BLOBFILE path '" + blob_path + "' does not start with @model_path/");
  std::string rel = blob_path.substr(root.size());
  if (rel.empty() || rel.find("..") != std::string::npos || rel[0] == '/')
    mil_fail("BLOBFILE path '" + blob_path + "' must stay inside the model folder");
  return rel;
}

std::string resolve_blob_path(const std::string& blob_path, const std::string& model_dir) {
  return model_dir + "/" + blob_relative_path(blob_path);
}

std::vector<uint8_t> read_blob_chunk(const std::string& file, uint64_t offset, const Type& type) {
  MappedFile f(file);
  return read_blob_chunk(f.data(), f.size(), file, offset, type);
}

std::vector<uint8_t> read_blob_chunk(const uint8_t* b, size_t file_size, const std::string& file, uint64_t offset,
                                     const Type& type) {
  size_t need = size_t(type.numel()) * elem_bytes(type.elem);
  if (offset > file_size || file_size - offset < kHeader) fail_at(file, offset, "no 64-byte chunk header here (file is " + std::to_string(file_size) + " bytes)");
  if (get_u32(b + offset) != kChunkMagic) fail_at(file, offset, "chunk header does not start with 0xDEADBEEF");
  uint32_t size = get_u32(b + offset + 8), data_at = get_u32(b + offset + 16);
  // The seed's benchmark generators leave size and offset zero: the data follows the header.
  if (size == 0 && data_at == 0) size = uint32_t(need), data_at = uint32_t(offset + kHeader);
  if (size != need)
    fail_at(file, offset + 8, "chunk holds " + std::to_string(size) + " bytes but " + type.str() + " needs " + std::to_string(need));
  if (data_at > file_size || file_size - data_at < size)
    fail_at(file, offset + 16, "chunk data at " + std::to_string(data_at) + " runs past the end of the file");
  return std::vector<uint8_t>(b + data_at, b + data_at + size);
}

namespace {

std::vector<double> decode_blob(const Literal& blob, const std::vector<uint8_t>& raw) {
  std::vector<double> v(size_t(blob.type.numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (blob.type.elem) {
      case ElemType::fp16: {
        uint16_t h;
        std::memcpy(&h, raw.data() + 2 * i, 2);
        v[i] = f16_to_f32(h);
        break;
      }
      case ElemType::int8: v[i] = double(int8_t(raw[i])); break;
      case ElemType::fp32: {
        float x;
        std::memcpy(&x, raw.data() + 4 * i, 4);
        v[i] = x;
        break;
      }
      default: mil_fail(std::string("BLOBFILE of ") + elem_name(blob.type.elem) + " is not supported (fp16, fp32, int8)");
    }
  }
  return v;
}

}  // namespace

std::vector<double> read_blob_values(const Literal& blob, const std::string& model_dir) {
  std::string file = resolve_blob_path(blob.blob_path, model_dir);
  return decode_blob(blob, read_blob_chunk(file, blob.blob_offset, blob.type));
}

std::vector<double> read_blob_values(const Literal& blob, const BlobFiles& files) {
  const std::string rel = blob_relative_path(blob.blob_path);
  auto it = files.find(rel);
  if (it == files.end()) mil_fail("BLOBFILE '" + blob.blob_path + "' is not among the program's weight files");
  return decode_blob(blob, read_blob_chunk(it->second.data(), it->second.size(), rel, blob.blob_offset, blob.type));
}

void check_blob_references(const Program& p, const std::string& model_dir) {
  for (const Op& op : p.ops)
    for (const Attr& a : op.attrs)
      if (a.value.kind == Literal::Kind::blobfile)
        read_blob_chunk(resolve_blob_path(a.value.blob_path, model_dir), a.value.blob_offset, a.value.type);
}

}  // namespace anetrain::mil
