// A BLZT file is read once: BlztFile checks the header when it opens the file and loads the
// weights and Adam moments from that same mapping, so what import-seed checked is what it loads,
// even when the path names another file by then.
#include <cstring>

#include "format_test_util.h"
#include "formats/blzt.h"

namespace anetrain {
namespace {

using namespace fmt_test;

// The tiny model: layers, vocabulary, dim, hidden dim, heads, sequence.
constexpr int32_t kTinyBlzt[6] = {1, 16, 8, 16, 2, 8};
constexpr size_t kTinyDim = 8, kTinyVocab = 16, kTinyHidden = 16;
constexpr size_t kTinyPerLayer = 4 * kTinyDim * kTinyDim + 3 * kTinyHidden * kTinyDim + 2 * kTinyDim;
constexpr size_t kTinyFloats = 3 * (kTinyPerLayer + kTinyDim + kTinyVocab * kTinyDim);  // weights, m, v

// A version 2 file (MHA, no RoPE) of the tiny model: header, then every float numbered by its
// position in the payload times `scale`, so each tensor's bytes are recognisable.
std::string tiny_blzt(float scale, int32_t step) {
  std::string bytes(kBlztHeaderBytes, '\0');
  auto put = [&](size_t off, auto v) { std::memcpy(bytes.data() + off, &v, sizeof v); };
  put(0, int32_t(0x424C5A54));
  put(4, int32_t(2));
  put(8, step);
  put(12, int32_t(1000));
  for (int i = 0; i < 6; ++i) put(16 + 4 * size_t(i), kTinyBlzt[i]);
  put(40, 3e-4f);
  put(44, 2.5f);
  put(80, int32_t(step));
  for (size_t i = 0; i < kTinyFloats; ++i) {
    const float x = float(i) * scale;
    bytes.append(reinterpret_cast<const char*>(&x), 4);
  }
  return bytes;
}

TEST(BlztFile, LoadsTheFileItCheckedEvenWhenThePathNamesAnotherByThen) {
  const fs::path dir = scratch("blzt_once");
  const fs::path path = dir / "ckpt.bin";
  spit(path, tiny_blzt(1e-3f, 40));
  const BlztFile file(path.string());
  EXPECT_EQ(file.header().version, 2);
  EXPECT_EQ(file.header().step, 40);
  EXPECT_EQ(file.header().adam_t, 40);
  EXPECT_EQ(file.header().lr, 3e-4f);

  // Another checkpoint renamed over the path, as a trainer saving its next one would.
  spit(dir / "next.bin", tiny_blzt(2e-3f, 80));
  fs::rename(dir / "next.bin", path);
  EXPECT_EQ(read_blzt_header(path.string()).step, 80);

  BlztMoments moments;
  const auto m = file.load(&moments);
  // The embedding is the payload's last group (weights, m, v): its first float is numbered
  // (total − 3·V·D); the checked file's numbering times 1e-3, not the new file's 2e-3.
  const ParamSpec& e = m->table.at(ParamRole::embedding, -1);
  ASSERT_EQ(e.numel(), kTinyVocab * kTinyDim);
  const size_t first = kTinyFloats - 3 * e.numel();
  for (size_t i = 0; i < e.numel(); ++i) {
    ASSERT_EQ(m->params[e.offset + i], float(first + i) * 1e-3f) << i;
    ASSERT_EQ(moments.m[e.offset + i], float(first + e.numel() + i) * 1e-3f) << i;
    ASSERT_EQ(moments.v[e.offset + i], float(first + 2 * e.numel() + i) * 1e-3f) << i;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anetrain
