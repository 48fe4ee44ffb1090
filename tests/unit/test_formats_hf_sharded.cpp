// Sharded Hugging Face folders: model.safetensors.index.json decides which shard holds each
// tensor, and is checked rather than trusted (missing shards, tensors not where the map says,
// paths outside the folder). Without an index, a tensor in two files is ambiguous and refused.
#include <nlohmann/json.hpp>

#include "format_test_util.h"
#include "formats/hf.h"
#include "formats/safetensors.h"

namespace anetrain {
namespace {

using namespace fmt_test;

const char* kShard1 = "model-00001-of-00002.safetensors";
const char* kShard2 = "model-00002-of-00002.safetensors";

// config.json plus two shards split at the middle of the table (a half-RoPE model, so the files
// hold its parameters unpermuted); returns the index as HF writes it.
nlohmann::json write_sharded(const Model& m, const fs::path& dir) {
  save_hf_folder(m, dir.string(), DType::f32);
  fs::remove(dir / "model.safetensors");
  std::vector<StWriteItem> a, b;
  nlohmann::json index = {{"metadata", {{"total_size", m.table.total() * 4}}}, {"weight_map", nlohmann::json::object()}};
  const auto& specs = m.table.specs();
  for (size_t i = 0; i < specs.size(); ++i) {
    const bool first = i < specs.size() / 2;
    (first ? a : b).push_back({specs[i].name, specs[i].shape, m.params.data() + specs[i].offset});
    index["weight_map"][specs[i].name] = first ? kShard1 : kShard2;
  }
  write_safetensors((dir / kShard1).string(), a, DType::f32);
  write_safetensors((dir / kShard2).string(), b, DType::f32);
  return index;
}

void write_index(const fs::path& dir, const nlohmann::json& index) {
  spit(dir / "model.safetensors.index.json", index.dump(2));
}

TEST(HfSharded, LoadsThroughTheIndex) {
  fs::path dir = scratch("hf_shard");
  auto m = random_model(tiny_qwen3(), 3);
  nlohmann::json index = write_sharded(*m, dir);
  write_index(dir, index);
  // A stray consolidated file beside the shards is ignored: the index names what to read.
  write_safetensors((dir / "consolidated.safetensors").string(),
                    {{"model.norm.weight", {16}, m->params.data()}, {"lm_head.weight", {40, 16}, m->params.data()}},
                    DType::f32);
  EXPECT_EQ(load_hf_folder(dir.string())->params, m->params);
  // Extra entries (a tied lm_head, as Qwen3-0.6B ships) are fine where the map is right about them...
  index["weight_map"]["lm_head.weight"] = "consolidated.safetensors";
  write_index(dir, index);
  EXPECT_EQ(load_hf_folder(dir.string())->params, m->params);
  // ...and an error where it is not.
  index["weight_map"]["lm_head.weight"] = kShard1;
  write_index(dir, index);
  expect_error([&] { load_hf_folder(dir.string()); }, "has no such tensor");
  fs::remove_all(dir);
}

TEST(HfSharded, IndexIsCheckedNotTrusted) {
  fs::path dir = scratch("hf_shard_bad");
  auto m = random_model(tiny_qwen3(), 4);
  const nlohmann::json good = write_sharded(*m, dir);
  const std::string first = m->table.specs()[0].name, last = m->table.specs().back().name;
  nlohmann::json j = good;
  j["weight_map"][first] = "model-00003-of-00002.safetensors";
  write_index(dir, j);
  expect_error([&] { load_hf_folder(dir.string()); }, "does not exist");
  j = good;
  j["weight_map"][first] = kShard2;  // it lives in shard 1
  write_index(dir, j);
  expect_error([&] { load_hf_folder(dir.string()); }, "has no such tensor");
  j = good;
  j["weight_map"].erase(last);
  write_index(dir, j);
  expect_error([&] { load_hf_folder(dir.string()); }, "missing from weight_map");
  j = good;
  j["weight_map"][first] = "../" + std::string(kShard1);
  write_index(dir, j);
  expect_error([&] { load_hf_folder(dir.string()); }, "not a plain file name");
  j = good;
  j["weight_map"][first] = 7;
  write_index(dir, j);
  expect_error([&] { load_hf_folder(dir.string()); }, "must name a file");
  write_index(dir, nlohmann::json{{"metadata", {}}});
  expect_error([&] { load_hf_folder(dir.string()); }, "weight_map");
  spit(dir / "model.safetensors.index.json", "{\"weight_map\": {");
  expect_error([&] { load_hf_folder(dir.string()); }, "at byte");
  fs::remove_all(dir);
}

TEST(HfSharded, WithoutIndexATensorInTwoFilesIsRefused) {
  fs::path dir = scratch("hf_dup");
  auto m = random_model(tiny_qwen3(), 5);
  write_sharded(*m, dir);
  EXPECT_EQ(load_hf_folder(dir.string())->params, m->params);  // shards found by glob
  write_safetensors((dir / "extra.safetensors").string(), {{"model.norm.weight", {16}, m->params.data()}}, DType::f32);
  expect_error([&] { load_hf_folder(dir.string()); }, "is in both");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anetrain
