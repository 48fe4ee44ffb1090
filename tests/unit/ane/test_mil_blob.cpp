// Weight blobs: the byte layout the ANE compiler reads, checked against blobs the seed wrote.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mil/blob.h"

namespace anetrain::mil {
namespace {

namespace fs = std::filesystem;
const fs::path kSeedMil = fs::path(ANETRAIN_ASSETS) / ".." / "reference" / "mil";

uint32_t u32(const std::vector<uint8_t>& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}

TEST(MilBlobs, CausalMaskBlobIsByteIdenticalToTheSeeds) {
  const int seq = 32;
  std::vector<float> mask(seq * seq);
  for (int i = 0; i < seq; ++i)
    for (int j = 0; j < seq; ++j) mask[i * seq + j] = j <= i ? 0.0f : -65504.0f;
  BlobWriter w;
  EXPECT_EQ(w.add_fp16(mask.data(), mask.size()), 64u);
  std::ifstream f(kSeedMil / "tiny-gqa" / "weights" / "mask.bin", std::ios::binary);
  std::vector<uint8_t> seed((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_EQ(seed.size(), 128u + 2 * seq * seq);
  EXPECT_EQ(w.bytes(), seed);
}

TEST(MilBlobs, MultiChunkLayoutKeepsHeadersAligned) {
  BlobWriter w;
  std::vector<uint16_t> a(32, 0x3c00), b(5, 0x4000);
  EXPECT_EQ(w.add_fp16(a), 64u);
  EXPECT_EQ(w.add_fp16(b), 64u + 64 + 64);  // equal-size chunks sit at 64 + i·(64 + bytes), as the seed's
  uint64_t third = w.add_int8({1, -2, 3});
  EXPECT_EQ(third, 64u + 128 + 64 + 64);     // 10 bytes of data padded to 64
  const auto& bytes = w.bytes();
  EXPECT_EQ(bytes[0], 1);
  EXPECT_EQ(bytes[4], 2);
  for (uint64_t chunk : {uint64_t(64), uint64_t(192), third}) {
    EXPECT_EQ(u32(bytes, chunk), 0xDEADBEEFu);
    EXPECT_EQ(u32(bytes, chunk + 4), 1u);
    EXPECT_EQ(u32(bytes, chunk + 16), chunk + 64);
  }
  EXPECT_EQ(u32(bytes, 192 + 8), 10u);
  EXPECT_EQ(u32(bytes, third + 8), 3u);

  fs::path dir = fs::temp_directory_path() / ("anetrain_blob_" + std::to_string(::getpid()));
  fs::create_directories(dir / "weights");
  w.write((dir / "weights" / "multi.bin").string());
  Literal second = Literal::of_blob(Type::of(ElemType::fp16, {5}), "@model_path/weights/multi.bin", 192);
  EXPECT_EQ(read_blob_values(second, dir.string()), std::vector<double>(5, 2.0));
  Literal int8s = Literal::of_blob(Type::of(ElemType::int8, {3}), "@model_path/weights/multi.bin", third);
  EXPECT_EQ(read_blob_values(int8s, dir.string()), (std::vector<double>{1, -2, 3}));
  Literal wrong = Literal::of_blob(Type::of(ElemType::fp16, {6}), "@model_path/weights/multi.bin", 192);
  try {
    read_blob_values(wrong, dir.string());
    ADD_FAILURE() << "size mismatch accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("at byte 200: chunk holds 10 bytes but tensor<fp16, [6]> needs 12"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(MilBlobs, PathsStayInsideTheModelFolder) {
  EXPECT_EQ(resolve_blob_path("@model_path/weights/w.bin", "/m"), "/m/weights/w.bin");
  EXPECT_THROW(resolve_blob_path("/etc/passwd", "/m"), MilError);
  EXPECT_THROW(resolve_blob_path("@model_path/../secret.bin", "/m"), MilError);
  EXPECT_THROW(resolve_blob_path("@model_path/", "/m"), MilError);
}

}  // namespace
}  // namespace anetrain::mil
