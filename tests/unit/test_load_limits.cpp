// Sizes are checked against the file before anything is allocated: a real checkpoint
// or HF folder whose config claims a vocabulary of 4,194,304 (1 GiB of embedding at dim 64) or an
// absurd one is refused with an Error naming the file, and the process's peak resident memory
// does not grow by anything like the claim. A JSON config with nothing to check against fails
// its allocation as an Error naming the file and the size it claimed, never a bare bad_alloc.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "format_test_util.h"
#include "formats/anck.h"
#include "formats/hf.h"
#include "formats/load.h"
#include "model/model.h"

namespace anetrain {
namespace {

using namespace fmt_test;

constexpr int kBigVocab = 4194304;        // × dim 64 × 4 bytes = 1 GiB of embedding
constexpr int kAbsurdVocab = 2147483647;  // INT32_MAX: half a terabyte at dim 64
constexpr int kOneTooMany = 33;           // the real vocabulary is 32: fits the file's bytes, not its shapes
// Loading the real 64-wide model itself costs well under 1 MiB; 64 MiB of peak growth leaves room
// for the loader's own bookkeeping and still fails loudly if even 1/16 of the claim was touched.
constexpr double kPeakGrowthLimitMb = 64;

ModelConfig small_config() {
  ModelConfig c = tiny_llama(true);
  c.dim = 64, c.head_dim = 16, c.hidden_dim = 96;
  return c;
}

// Peak resident memory in MB after resetting the kernel's high-water mark, so the number is this
// test's peak and not an earlier test's.
double reset_and_read_peak_mb() {
  std::ofstream("/proc/self/clear_refs") << "5";
  std::ifstream status("/proc/self/status");
  std::string key;
  double kb = 0;
  while (status >> key)
    if (key == "VmHWM:") status >> kb;
  return kb / 1024;
}
double peak_mb() {
  std::ifstream status("/proc/self/status");
  std::string key;
  double kb = 0;
  while (status >> key)
    if (key == "VmHWM:") status >> kb;
  return kb / 1024;
}

// Loads `spec` expecting an Error that holds `want`; returns the growth of peak memory in MB.
double expect_refused(const std::function<void()>& load, const std::string& want) {
  const double before = reset_and_read_peak_mb();
  try {
    load();
    ADD_FAILURE() << "loaded without an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an anetrain::Error: " << e.what();
  }
  return peak_mb() - before;
}

// Rewrites meta.config.vocab_size of a .anck in place: the header is space-padded, so the longer
// number fits in the same bytes; its CRC is recomputed so that only the claim is wrong.
void edit_anck_vocab(const fs::path& path, int64_t vocab) {
  std::string bytes = slurp(path);
  uint64_t hlen;
  std::memcpy(&hlen, bytes.data() + 16, 8);
  auto h = nlohmann::ordered_json::parse(bytes.substr(24, hlen));
  h["meta"]["config"]["vocab_size"] = vocab;
  std::string text = h.dump();
  ASSERT_LE(text.size(), hlen);
  text.resize(hlen, ' ');
  const uint32_t crc = crc32_of(text.data(), text.size());
  std::memcpy(bytes.data() + 12, &crc, 4);
  bytes.replace(24, hlen, text);
  spit(path, bytes);
}

void edit_hf_vocab(const fs::path& dir, int64_t vocab) {
  auto j = nlohmann::json::parse(slurp(dir / "config.json"));
  j["vocab_size"] = vocab;
  spit(dir / "config.json", j.dump(2));
}

TEST(LoadLimits, CheckpointClaimingAHugeVocabIsRefusedBeforeAllocating) {
  const fs::path dir = scratch("anck_vocab");
  auto m = random_model(small_config(), 5);
  std::vector<AnckTensorIn> tensors;
  for (const auto& s : m->table.specs()) tensors.push_back({s.name, s.shape, m->param(s)});
  const fs::path path = dir / "model.anck";
  for (int64_t vocab : {int64_t(kOneTooMany), int64_t(kBigVocab), int64_t(kAbsurdVocab)}) {
    write_anck(path.string(), "model", {{"config", config_to_json(m->cfg)}, {"step", 0}}, tensors);
    ASSERT_NO_THROW(load_model(path.string()));  // the unedited file loads
    edit_anck_vocab(path, vocab);
    const double grew = expect_refused([&] { load_model(path.string()); }, path.string());
    EXPECT_LT(grew, kPeakGrowthLimitMb) << "vocab " << vocab << ": peak memory grew by " << grew << " MB";
  }
}

TEST(LoadLimits, HfFolderClaimingAHugeVocabIsRefusedBeforeAllocating) {
  auto m = random_model(small_config(), 6);
  for (DType dtype : {DType::f32, DType::bf16}) {
    const fs::path dir = scratch(std::string("hf_vocab_") + dtype_name(dtype));
    save_hf_folder(*m, dir.string(), dtype);
    for (int64_t vocab : {int64_t(kOneTooMany), int64_t(kBigVocab), int64_t(kAbsurdVocab)}) {
      edit_hf_vocab(dir, vocab);
      double grew = expect_refused([&] { load_model(dir.string()); }, (dir / "config.json").string());
      EXPECT_LT(grew, kPeakGrowthLimitMb) << dtype_name(dtype) << " vocab " << vocab << ": grew " << grew << " MB";
      grew = expect_refused([&] { load_packed_model(dir.string()); }, (dir / "config.json").string());
      EXPECT_LT(grew, kPeakGrowthLimitMb) << "packed " << dtype_name(dtype) << " vocab " << vocab << ": grew " << grew << " MB";
    }
  }
}

TEST(LoadLimits, UnallocatableJsonConfigNamesFileAndSize) {
  const fs::path dir = scratch("json_vocab");
  nlohmann::json j = config_to_json(small_config());
  j["vocab_size"] = kAbsurdVocab;
  j["dim"] = 1 << 20;  // ~2.3e15 parameters: no machine allocates that
  j["head_dim"] = 16;
  j["n_heads"] = 4;
  spit(dir / "huge.json", j.dump());
  const std::string path = (dir / "huge.json").string();
  const double grew = expect_refused([&] { load_model(path); }, path + ": the config claims 2.3e+15 parameters");
  EXPECT_LT(grew, kPeakGrowthLimitMb);
}

TEST(LoadLimits, ClaimedParameterCountMatchesTheTable) {
  for (ModelConfig c : {tiny_llama(true), tiny_llama(false), tiny_qwen3(), small_config()})
    EXPECT_EQ(claimed_parameters(c), double(ParamTable(c).total()));
}

}  // namespace
}  // namespace anetrain
