// LoRA adapters in the model layer and on disk: the parameter table (base offsets kept, adapters
// after them with PEFT's names, only they trainable), the config's JSON, merge_adapters against a
// double-precision merge, the arena re-bound when adapters come and go, and PEFT folders — a round
// trip, and every setting anetrain cannot compute the same way refused with the file's name.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "format_test_util.h"
#include "op_test_util.h"
#include "formats/peft.h"
#include "formats/safetensors.h"
#include "model/lora.h"

namespace anetrain::fmt_test {
namespace {

using test::error_of;

ModelConfig tiny_qwen() {
  return config_from_json(nlohmann::json::parse(R"({"arch":"qwen3","dim":32,"n_layers":2,"n_heads":4,
      "n_kv_heads":2,"head_dim":8,"hidden_dim":40,"vocab_size":50,"max_seq_len":16,"qk_norm":true,
      "rope_style":"half"})"), "test");
}
LoraConfig lora(int r, std::vector<std::string> targets = {"q", "k", "v", "o", "gate", "up", "down"}) {
  LoraConfig l;
  l.rank = r;
  l.alpha = 2.0 * r;
  l.targets = std::move(targets);
  return l;
}
bool inside(const Model& m, const float* p) { return p >= m.params.data() && p < m.params.data() + m.params.size(); }

TEST(LoraModel, TableKeepsTheBaseAndAddsPeftNamedAdaptersThatAloneTrain) {
  const ModelConfig base = tiny_qwen();
  ModelConfig with = base;
  with.lora = lora(3, {"q", "down"});
  const ParamTable a(base), b(with);
  for (const ParamSpec& s : a.specs()) {
    const ParamSpec* t = b.find(s.name);
    ASSERT_NE(t, nullptr) << s.name;
    EXPECT_EQ(t->offset, s.offset) << s.name;
    EXPECT_FALSE(t->trainable) << s.name;
  }
  const ParamSpec* qa = b.find("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
  const ParamSpec* db = b.find("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
  ASSERT_TRUE(qa && db);
  EXPECT_EQ(qa->shape, (std::vector<int64_t>{3, 32}));  // A (r, in)
  EXPECT_EQ(db->shape, (std::vector<int64_t>{3, 32}));  // B held as (r, out)
  EXPECT_TRUE(qa->trainable && db->trainable);
  EXPECT_EQ(b.specs().size(), a.specs().size() + 2 * 2 * 2);  // layers × targets × {A, B}
  EXPECT_EQ(b.grad_total(), size_t(2) * (3 * 32 + 3 * 32 + 3 * 40 + 3 * 32));
  EXPECT_EQ(config_from_json(config_to_json(with), "round trip").lora.targets, with.lora.targets);
  EXPECT_EQ(config_to_json(base).count("lora"), 0u);  // plain configs read as before
  ModelConfig bad = with;
  bad.lora.targets = {"q", "bogus"};
  EXPECT_NE(error_of([&] { bad.validate(); }).find("'bogus'"), std::string::npos);
}

TEST(LoraModel, MergeIsTheDoublePrecisionSumAndDropRebindsTheViews) {
  auto m = std::make_unique<Model>(tiny_qwen());
  init_random(*m, 1);
  m->add_adapters(lora(4));
  init_random_where(*m, 2, is_adapter);  // B nonzero, unlike init_adapters
  const LayerTensors L = m->w.layers[1];
  ASSERT_TRUE(inside(*m, L.wq) && inside(*m, L.lora.w_up.a) && inside(*m, L.lora.w_up.bt));
  const int out = 40, in = 32, r = 4;
  const double s = m->cfg.lora.scale();
  std::vector<double> want(size_t(out) * in);
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) {
      double sum = 0;
      for (int k = 0; k < r; ++k) sum += double(L.lora.w_up.bt[k * out + o]) * L.lora.w_up.a[k * in + i];
      want[size_t(o) * in + i] = double(L.w_up[size_t(o) * in + i]) + s * sum;
    }
  merge_adapters(*m);
  EXPECT_EQ(m->cfg.lora.rank, 0);
  EXPECT_EQ(m->params.size(), ParamTable(tiny_qwen()).total());
  const float* up = m->w.layers[1].w_up;
  ASSERT_TRUE(inside(*m, up) && inside(*m, m->w.embedding));  // views follow a moved arena
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(up[i], float(want[i])) << i;
}

TEST(LoraModel, PeftFoldersRoundTripAndRefuseWhatWeCannotCompute) {
  const fs::path dir = scratch("peft");
  auto m = std::make_unique<Model>(tiny_qwen());
  init_random(*m, 1);
  m->add_adapters(lora(2, {"k", "gate"}));
  init_random_where(*m, 3, is_adapter);
  save_peft_adapter(*m, dir.string(), "tiny");
  const SafetensorsReader r((dir / "adapter_model.safetensors").string());
  EXPECT_EQ(r.info("base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight").shape,
            (std::vector<int64_t>{16, 2}));  // PEFT's (out, r)
  auto back = std::make_unique<Model>(tiny_qwen());
  load_peft_adapter(*back, dir.string());
  EXPECT_EQ(back->cfg.lora.targets, (std::vector<std::string>{"k", "gate"}));
  EXPECT_EQ(back->cfg.lora.alpha, 4.0);
  for (const ParamSpec& s : m->table.specs()) {
    if (!is_adapter(s)) continue;
    for (size_t i = 0; i < s.numel(); ++i) ASSERT_EQ(back->param(s)[i], m->param(s)[i]) << s.name;
  }

  const std::string config = slurp(dir / "adapter_config.json");
  auto refused = [&](const std::string& key, const std::string& value) {
    nlohmann::json j = nlohmann::json::parse(config);
    j[key] = nlohmann::json::parse(value);
    spit(dir / "adapter_config.json", j.dump());
    auto fresh = std::make_unique<Model>(tiny_qwen());
    return error_of([&] { load_peft_adapter(*fresh, dir.string()); });
  };
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"use_rslora", "true"}, {"use_dora", "true"}, {"bias", "\"all\""}, {"fan_in_fan_out", "true"},
           {"target_modules", "\"q_proj|v_proj\""}, {"target_modules", "[\"q_proj\",\"lm_head\"]"}}) {
    const std::string e = refused(key, value);
    EXPECT_NE(e.find("adapter_config.json"), std::string::npos) << key << ": " << e;
    EXPECT_NE(e.find(key), std::string::npos) << key << ": " << e;
  }
  // The config claims a target the tensors lack: the missing tensor is named.
  const std::string e = refused("target_modules", "[\"k_proj\",\"gate_proj\",\"up_proj\"]");
  EXPECT_NE(e.find("up_proj.lora_A.weight' is missing"), std::string::npos) << e;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anetrain::fmt_test
