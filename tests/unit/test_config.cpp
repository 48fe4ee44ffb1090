// Model configs: every built-in preset loads with the published architecture of its model, the
// parameter table counts match the models' known sizes, and config_from_json rejects a bad
// config with an Error that names the offending field (so a user can fix their file).
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "model/config.h"
#include "model/params.h"

namespace anetrain {
namespace {

struct Expected {
  const char* preset;
  const char* arch;
  int dim, n_layers, n_heads, n_kv_heads, head_dim, hidden_dim, vocab_size, max_seq_len;
  double rope_theta;
  RopeStyle rope;
  double norm_eps;
  bool qk_norm;
};

// From the llama2.c TinyStories model cards and Qwen3-0.6B's config.json.
const Expected kPresets[] = {
    {"stories260k", "llama", 64, 5, 8, 4, 8, 172, 512, 512, 1e4, RopeStyle::interleaved, 1e-5, false},
    {"stories15m", "llama", 288, 6, 6, 6, 48, 768, 32000, 256, 1e4, RopeStyle::interleaved, 1e-5, false},
    {"stories42m", "llama", 512, 8, 8, 8, 64, 1376, 32000, 1024, 1e4, RopeStyle::interleaved, 1e-5, false},
    {"stories110m", "llama", 768, 12, 12, 12, 64, 2048, 32000, 1024, 1e4, RopeStyle::interleaved, 1e-5, false},
    {"qwen3-0.6b", "qwen3", 1024, 28, 16, 8, 128, 3072, 151936, 40960, 1e6, RopeStyle::half, 1e-6, true},
};

TEST(Presets, AllListed) {
  const auto names = preset_names();
  for (const auto& e : kPresets) {
    EXPECT_TRUE(is_preset(e.preset)) << e.preset;
    EXPECT_NE(std::find(names.begin(), names.end(), e.preset), names.end()) << e.preset;
  }
  EXPECT_FALSE(is_preset("stories1b"));
}

TEST(Presets, ExactFields) {
  for (const auto& e : kPresets) {
    SCOPED_TRACE(e.preset);
    const ModelConfig c = preset_config(e.preset);
    EXPECT_EQ(c.arch, e.arch);
    EXPECT_EQ(c.dim, e.dim);
    EXPECT_EQ(c.n_layers, e.n_layers);
    EXPECT_EQ(c.n_heads, e.n_heads);
    EXPECT_EQ(c.n_kv_heads, e.n_kv_heads);
    EXPECT_EQ(c.head_dim, e.head_dim);
    EXPECT_EQ(c.hidden_dim, e.hidden_dim);
    EXPECT_EQ(c.vocab_size, e.vocab_size);
    EXPECT_EQ(c.max_seq_len, e.max_seq_len);
    EXPECT_EQ(c.rope_theta, e.rope_theta);
    EXPECT_EQ(c.rope_style, e.rope);
    EXPECT_EQ(c.norm_eps, e.norm_eps);
    EXPECT_EQ(c.qk_norm, e.qk_norm);
    EXPECT_TRUE(c.tied_embeddings);
    EXPECT_EQ(c.residual_scale, 1.0);
  }
}

TEST(Presets, UnknownNameListsTheKnownOnes) {
  try {
    preset_config("stories1b");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stories1b"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("qwen3-0.6b"), std::string::npos) << e.what();
  }
}

TEST(Presets, JsonRoundTrip) {
  for (const auto& e : kPresets) {
    const ModelConfig a = preset_config(e.preset);
    EXPECT_EQ(config_to_json(config_from_json(config_to_json(a), "round trip")), config_to_json(a)) << e.preset;
  }
}

// Totals of the published checkpoints; qwen3-0.6b is counted with the table alone (a Model
// would allocate 2.4 GB of weights and as much of gradients).
TEST(ParamTable, KnownTotals) {
  EXPECT_EQ(ParamTable(preset_config("stories260k")).total(), 260032u);
  EXPECT_EQ(ParamTable(preset_config("stories110m")).total(), 109529856u);
  EXPECT_EQ(ParamTable(preset_config("qwen3-0.6b")).total(), 596049920u);
}

TEST(ParamTable, OffsetsAreContiguousAndOptionalTensorsCount) {
  ModelConfig c = preset_config("qwen3-0.6b");
  const ParamTable tied(c);
  size_t next = 0;
  for (const auto& s : tied.specs()) {
    EXPECT_EQ(s.offset, next) << s.name;
    next += s.numel();
  }
  EXPECT_EQ(next, tied.total());
  EXPECT_NE(tied.find("model.layers.27.self_attn.k_norm.weight"), nullptr);
  EXPECT_EQ(tied.find("lm_head.weight"), nullptr);

  c.tied_embeddings = false;
  EXPECT_EQ(ParamTable(c).total(), tied.total() + size_t(c.vocab_size) * c.dim);
  c.qk_norm = false;
  EXPECT_EQ(ParamTable(c).total(), tied.total() + size_t(c.vocab_size) * c.dim - size_t(2) * c.head_dim * c.n_layers);
}

// ---- rejection ----

nlohmann::json valid() {
  return {{"dim", 64},         {"n_layers", 2},     {"n_heads", 8},
          {"n_kv_heads", 4},   {"head_dim", 8},     {"hidden_dim", 172},
          {"vocab_size", 512}, {"max_seq_len", 64}, {"rope_style", "interleaved"}};
}

// The Error for `j`, or a failure naming the field when it was accepted.
std::string error_for(const nlohmann::json& j) {
  try {
    config_from_json(j, "bad.json");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << j.dump();
  return "";
}

struct Bad {
  const char* why;
  const char* key;  // the field set to `value` in an otherwise valid config
  nlohmann::json value;
  const char* must_name;  // quoted in the message, so 'dim' is not matched by 'head_dim'
};

TEST(ConfigFromJson, ValidBaseAndDefaults) {
  ModelConfig c;
  ASSERT_NO_THROW(c = config_from_json(valid(), "ok.json"));
  nlohmann::json j = valid();
  j.erase("n_kv_heads");
  j.erase("head_dim");
  c = config_from_json(j, "defaults.json");
  EXPECT_EQ(c.n_kv_heads, 8);  // MHA when absent
  EXPECT_EQ(c.head_dim, 8);    // dim / n_heads when absent
}

TEST(ConfigFromJson, RejectsNamingTheField) {
  const Bad cases[] = {
      {"heads not divisible by kv heads", "n_kv_heads", 3, "'n_kv_heads'"},
      {"zero dim", "dim", 0, "'dim'"},
      {"negative layers", "n_layers", -1, "'n_layers'"},
      {"unknown key", "n_layer", 2, "'n_layer'"},
      {"string for an int", "n_layers", "two", "'n_layers'"},
      {"string for a bool", "qk_norm", "yes", "'qk_norm'"},
      {"number for a bool", "tied_embeddings", 1, "'tied_embeddings'"},
      {"array for a float", "rope_theta", nlohmann::json::array({1e4}), "'rope_theta'"},
      {"odd head_dim", "head_dim", 7, "'head_dim'"},
      {"head_dim over the RoPE table", "head_dim", 2048, "'head_dim'"},
      {"bad rope_style", "rope_style", "rotate_half", "'rope_style'"},
      {"rope_style of the wrong type", "rope_style", 1, "'rope_style'"},
      {"zero norm_eps", "norm_eps", 0.0, "'norm_eps'"},
      {"negative residual_scale", "residual_scale", -0.5, "'residual_scale'"},
      {"unknown arch", "arch", "gpt2", "'arch'"},
  };
  for (const auto& b : cases) {
    nlohmann::json j = valid();
    j[b.key] = b.value;
    const std::string msg = error_for(j);
    EXPECT_NE(msg.find(b.must_name), std::string::npos) << b.why << ": " << msg;
    EXPECT_NE(msg.find("bad.json"), std::string::npos) << b.why << ": the source is not named: " << msg;
  }
}

TEST(ConfigFromJson, RejectsNonObject) {
  EXPECT_NE(error_for(nlohmann::json::array({1, 2})).find("object"), std::string::npos);
}

// Known gap, reported rather than fixed here: nlohmann's get<int>() converts floats and booleans,
// and wraps out-of-range integers, so these are accepted (as 64, 1 and 1) instead of being
// rejected as having the wrong type.
TEST(ConfigFromJson, RejectsNonIntegersInIntegerFields) {
  const Bad cases[] = {
      {"fractional dim", "dim", 64.5, "'dim'"},
      {"bool dim", "dim", true, "'dim'"},
      {"max_seq_len beyond int", "max_seq_len", 4294967297LL, "'max_seq_len'"},
  };
  for (const auto& b : cases) {
    nlohmann::json j = valid();
    j[b.key] = b.value;
    const std::string msg = error_for(j);
    EXPECT_NE(msg.find(b.must_name), std::string::npos) << b.why << ": " << msg;
  }
}

}  // namespace
}  // namespace anetrain

namespace anetrain {
namespace {
// Found by fuzz_gguf (fuzz/regressions/gguf/overflowing-head-width): every field positive, but
// n_heads · head_dim past INT_MAX overflowed q_dim() while the parameter table was laid out.
TEST(ConfigValidate, RefusesHeadWidthsPastInt) {
  ModelConfig c;
  c.dim = 16, c.n_layers = 1, c.hidden_dim = 32, c.vocab_size = 8, c.max_seq_len = 8;
  c.n_heads = 2147483647, c.n_kv_heads = 1, c.head_dim = 4;
  try {
    c.validate();
    FAIL() << "accepted n_heads × head_dim past INT_MAX";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'n_heads' × 'head_dim'"), std::string::npos) << e.what();
  }
}
}  // namespace
}  // namespace anetrain
