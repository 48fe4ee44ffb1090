// Hostile and broken GGUF files: every one must end in anetrain::Error naming the problem, never a
// crash, a hang or a giant allocation. Truncation is tried at every byte of a small file and at
// many points of the real legacy-v1 file; counts and lengths are pushed to 2^32 and 2^60.
#include <cstring>

#include "format_test_util.h"
#include "formats/gguf.h"

namespace anetrain {
namespace {

using namespace fmt_test;

// A small but complete file: tied tiny llama plus a 32-token vocabulary.
std::string small_gguf(const fs::path& dir) {
  auto m = random_model(tiny_llama(true), 9);
  GgufTokenizer t;
  t.model = "llama";
  for (int i = 0; i < 32; ++i) t.tokens.push_back("t" + std::to_string(i)), t.scores.push_back(-float(i));
  t.token_type.assign(32, 1);
  t.bos_id = 1;
  const std::string p = (dir / "small.gguf").string();
  save_gguf(*m, p, DType::f16, &t);
  return p;
}

// Where the tensor data ends: cuts before it must fail, cuts after only drop padding.
uint64_t data_end(const std::string& path) {
  GgufReader r(path);
  uint64_t end = 0;
  for (const auto& t : r.tensors()) end = std::max(end, t.offset + t.nbytes);
  return end;
}

TEST(GgufBad, TruncatedAtEveryHeaderByteOfASmallFile) {
  fs::path dir = scratch("gguf_cut");
  const std::string good = slurp(small_gguf(dir));
  const uint64_t end = data_end((dir / "small.gguf").string());
  uint64_t data_start = end;
  const GgufReader r((dir / "small.gguf").string());
  for (const auto& t : r.tensors()) data_start = std::min(data_start, t.offset);
  const std::string p = (dir / "cut.gguf").string();
  // Every byte of metadata and tensor infos (where the parsing is), then a stride through the data.
  for (size_t cut = 0; cut < good.size(); cut += cut < data_start + 64 ? 1 : 61) {
    spit(p, good.substr(0, cut));
    bool threw = false;
    try {
      load_gguf(p);
    } catch (const Error&) {
      threw = true;
    }
    if (cut < end) {
      ASSERT_TRUE(threw) << "cut at " << cut << " of " << good.size();
    }
  }
  fs::remove_all(dir);
}

TEST(GgufBad, TruncatedLegacyV1File) {
  fs::path dir = scratch("gguf_cut1");
  const std::string good = slurp(kAssets + "/gguf/tinyllamas-stories-260k-f32.gguf");
  const std::string p = (dir / "cut.gguf").string();
  std::vector<size_t> cuts;
  for (size_t c = 0; c < 400; ++c) cuts.push_back(c);
  for (size_t c = 400; c < good.size(); c += good.size() / 37) cuts.push_back(c);
  cuts.push_back(good.size() - 1);
  for (size_t cut : cuts) {
    spit(p, good.substr(0, cut));
    EXPECT_THROW(load_gguf(p), Error) << "cut at " << cut;
  }
  fs::remove_all(dir);
}

TEST(GgufBad, MagicVersionAndHugeCounts) {
  fs::path dir = scratch("gguf_hdr");
  const std::string p = (dir / "x.gguf").string();
  auto load = [&](const std::string& bytes) {
    spit(p, bytes);
    GgufReader r(p);
  };
  expect_error([&] { load("GGUX" + std::string(20, '\0')); }, "bad magic");
  expect_error([&] { load(GgufBytes{}.u32(0x46554747).u32(4).u64(0).u64(0).b); }, "version 4");
  expect_error([&] { load(GgufBytes{}.u32(0x46554747).u32(0).u64(0).u64(0).b); }, "version 0");
  expect_error([&] { load(GgufBytes{}.u32(0x46554747).u32(0x03000000).u64(0).u64(0).b); }, "big-endian");
  expect_error([&] { load(GgufBytes{}.u32(0x46554747).u32(3).u64(1ull << 60).u64(0).b); }, "tensor count");
  expect_error([&] { load(GgufBytes{}.u32(0x46554747).u32(3).u64(0).u64(1ull << 60).b); }, "metadata count");
  // v1: u32 counts, so 2^32−1 is the largest a hostile file can claim.
  GgufBytes v1{false, {}};
  expect_error([&] { load(v1.u32(0x46554747).u32(1).count(0xffffffffu).count(0).b); }, "tensor count");
  // A string longer than the file, and an array longer than the bytes left.
  expect_error([&] { load(GgufBytes{}.u32(0x46554747).u32(3).u64(0).u64(1).u64(1ull << 63).b + std::string(64, 'k')); },
               "truncated");
  expect_error([&] { load(GgufBytes{}.u32(0x46554747).u32(3).u64(0).u64(1).str("a").u32(9).u32(4).u64(1ull << 62).b); },
               "cannot fit");
  expect_error([&] { load(GgufBytes{}.u32(0x46554747).u32(3).u64(0).u64(1).str("a").u32(9).u32(8).u64(1ull << 40).b); },
               "cannot fit");
  GgufBytes v1s{false, {}};
  expect_error([&] { load(v1s.u32(0x46554747).u32(1).count(0).count(1).str("a").u32(9).u32(8).count(0xfffffff0u).b); },
               "cannot fit");
  fs::remove_all(dir);
}

TEST(GgufBad, MalformedMetadataValues) {
  fs::path dir = scratch("gguf_kv");
  const std::string p = (dir / "x.gguf").string();
  auto with_kv = [&](const std::function<void(GgufBytes&)>& kv, uint64_t n_kv = 1) {
    GgufBytes g;
    g.u32(0x46554747).u32(3).u64(0).u64(n_kv);
    kv(g);
    spit(p, g.b);
    GgufReader r(p);
  };
  expect_error([&] { with_kv([](GgufBytes& g) { g.str("k").u32(13).u32(0); }); }, "unknown metadata value type 13");
  expect_error([&] { with_kv([](GgufBytes& g) { g.str("k").u32(7).put<uint8_t>(2); }); }, "bool value is 2");
  expect_error([&] { with_kv([](GgufBytes& g) { g.kv_u32("k", 1).kv_u32("k", 2); }, 2); }, "duplicate metadata key");
  expect_error([&] { with_kv([](GgufBytes& g) { g.kv_u32("general.alignment", 3); }); }, "power of two");
  expect_error([&] { with_kv([](GgufBytes& g) { g.kv_str("general.alignment", "x"); }); }, "power of two");
  expect_error(
      [&] {
        with_kv([](GgufBytes& g) {
          g.str("k").u32(9);
          for (int d = 0; d < 6; ++d) g.u32(9).u64(1);  // array of array of ... (6 deep)
          g.u32(4).u64(0);
        });
      },
      "nested deeper");
  // Arrays of arrays within the limit are fine.
  with_kv([](GgufBytes& g) { g.str("k").u32(9).u32(9).u64(2).u32(4).u64(1).u32(7).u32(5).u64(0); });
  fs::remove_all(dir);
}

// One tensor info after an empty metadata block; `info` writes name, dims, type and offset.
void one_tensor(const std::string& p, const std::function<void(GgufBytes&)>& info, size_t data_bytes) {
  GgufBytes g;
  g.u32(0x46554747).u32(3).u64(1).u64(0);
  info(g);
  g.pad(32);
  g.b += std::string(data_bytes, '\0');
  spit(p, g.b);
  GgufReader r(p);
}

TEST(GgufBad, MalformedTensorInfos) {
  fs::path dir = scratch("gguf_ti");
  const std::string p = (dir / "x.gguf").string();
  expect_error([&] { one_tensor(p, [](GgufBytes& g) { g.str("w").u32(1).u64(8).u32(0).u64(0); }, 16); }, "past the end");
  expect_error([&] { one_tensor(p, [](GgufBytes& g) { g.str("w").u32(1).u64(8).u32(0).u64(1ull << 62); }, 64); },
               "past the end");
  expect_error([&] { one_tensor(p, [](GgufBytes& g) { g.str("w").u32(1).u64(8).u32(0).u64(~0ull - 31); }, 64); },
               "past the end");
  expect_error([&] { one_tensor(p, [](GgufBytes& g) { g.str("w").u32(1).u64(8).u32(0).u64(4); }, 64); }, "alignment");
  expect_error([&] { one_tensor(p, [](GgufBytes& g) { g.str("w").u32(1).u64(8).u32(99).u64(0); }, 64); },
               "ggml type 99 (unknown)");
  expect_error([&] { one_tensor(p, [](GgufBytes& g) { g.str("w").u32(1).u64(256).u32(12).u64(0); }, 1024); },
               "Q4_K");
  expect_error([&] { one_tensor(p, [](GgufBytes& g) { g.str("w").u32(1).u64(48).u32(8).u64(0); }, 1024); },
               "multiple of 32");
  expect_error([&] { one_tensor(p, [](GgufBytes& g) { g.str("w").u32(5).u64(1).u64(1).u64(1).u64(1).u64(1).u32(0).u64(0); }, 64); },
               "5 dims");
  expect_error([&] { one_tensor(p, [](GgufBytes& g) { g.str("w").u32(2).u64(0).u64(4).u32(0).u64(0); }, 64); },
               "implausibly large");
  expect_error([&] { one_tensor(p, [](GgufBytes& g) { g.str("w").u32(2).u64(1ull << 30).u64(1ull << 30).u32(0).u64(0); }, 64); },
               "implausibly large");
  // Two tensors sharing bytes, and two with one name.
  auto two = [&](uint64_t off2, const std::string& name2) {
    GgufBytes g;
    g.u32(0x46554747).u32(3).u64(2).u64(0);
    g.str("a").u32(1).u64(16).u32(0).u64(0);
    g.str(name2).u32(1).u64(16).u32(0).u64(off2);
    g.pad(32);
    g.b += std::string(256, '\0');
    spit(p, g.b);
    GgufReader r(p);
  };
  expect_error([&] { two(32, "b"); }, "overlap");
  expect_error([&] { two(64, "a"); }, "duplicate tensor");
  fs::remove_all(dir);
}

TEST(GgufBad, ModelLevelProblems) {
  fs::path dir = scratch("gguf_model");
  auto m = random_model(tiny_llama(true), 4);
  auto kv = [](const std::string& arch) {
    return std::vector<GgufKV>{{"general.architecture", GgufValue::of_str(arch)},
                               {"llama.embedding_length", GgufValue::of_u32(16)},
                               {"llama.block_count", GgufValue::of_u32(2)},
                               {"llama.feed_forward_length", GgufValue::of_u32(24)},
                               {"llama.attention.head_count", GgufValue::of_u32(4)},
                               {"llama.attention.head_count_kv", GgufValue::of_u32(2)},
                               {"llama.context_length", GgufValue::of_u32(16)},
                               {"llama.attention.layer_norm_rms_epsilon", GgufValue::of_f32(1e-5f)}};
  };
  const std::string good = (dir / "good.gguf").string(), p = (dir / "x.gguf").string();
  save_gguf(*m, good, DType::f32);
  GgufReader r(good);
  std::vector<GgufTensorOut> ts;
  std::vector<std::vector<float>> bufs;
  for (const auto& t : r.tensors()) {
    bufs.emplace_back(t.numel());
    r.read_f32(t, t.shape, bufs.back().data());
    ts.push_back({t.name, t.shape, bufs.back().data(), GgmlType::f32});
  }
  write_gguf(p, kv("llama"), ts);
  load_gguf(p);  // the hand-made key set is complete
  write_gguf(p, kv("gpt2"), ts);
  expect_error([&] { load_gguf(p); }, "architecture 'gpt2' is not supported");
  auto k = kv("llama");
  k.pop_back();
  write_gguf(p, k, ts);
  expect_error([&] { load_gguf(p); }, "layer_norm_rms_epsilon");
  k = kv("llama");
  k[2].value = GgufValue::of_u32(1u << 30);
  write_gguf(p, k, ts);
  expect_error([&] { load_gguf(p); }, "block_count");
  k = kv("llama");
  k[1].value = GgufValue::of_str("16");
  write_gguf(p, k, ts);
  expect_error([&] { load_gguf(p); }, "must be an integer");
  k = kv("llama");
  k.push_back({"llama.rope.dimension_count", GgufValue::of_u32(2)});
  write_gguf(p, k, ts);
  expect_error([&] { load_gguf(p); }, "partial rotary");
  auto missing = ts;
  missing.erase(missing.begin() + 3);
  write_gguf(p, kv("llama"), missing);
  expect_error([&] { load_gguf(p); }, "is missing");
  auto extra = ts;
  extra.push_back({"blk.0.attn_q.bias", {16}, bufs[1].data(), GgmlType::f32});
  write_gguf(p, kv("llama"), extra);
  expect_error([&] { load_gguf(p); }, "blk.0.attn_q.bias");
  auto wrong = ts;
  for (auto& t : wrong)
    if (t.name == "blk.0.attn_k.weight") t.shape = {t.shape[1], t.shape[0]};
  write_gguf(p, kv("llama"), wrong);
  expect_error([&] { load_gguf(p); }, "has shape");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anetrain
