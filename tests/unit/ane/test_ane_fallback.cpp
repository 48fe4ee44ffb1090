// A program the Neural Engine rejects costs its stage, not the run: through the
// fake framework told to reject chosen programs — by name and by operation, at compile and at
// evaluate — the stage runs on the CPU, gradients are those of the cpu backend (nothing counted
// twice when a backward fails midway), the fallback is reported once, and --ane-strict refuses.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "backends/ane/fake/fake_api.h"
#include "backends/ane/runtime/runtime.h"
#include "backends/ane/ane_backend.h"
#include "contract/registry.h"
#include "core/error.h"
#include "model/config.h"
#include "model/params.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"

namespace anetrain::test {
namespace {

std::unique_ptr<AneBackend> fake_backend(const std::string& faults) {
  return std::make_unique<AneBackend>("ane-fake", std::make_unique<ane::AneRuntime>(ane::make_fake_api(ane::FakeOptions::parse(faults))),
                                      make_backend("cpu"));
}

struct Pass {
  double loss;
  std::vector<float> grads;
  std::vector<ParamSpec> specs;
};

// A tiny Qwen3 (GQA 4/2, QK-norm): its QK-norm gradients accumulate before the attention
// backward's last programs run, which a fallback midway must undo.
ModelConfig tiny_qwen3() {
  ModelConfig c;
  c.arch = "qwen3";
  c.dim = 64, c.n_layers = 2, c.hidden_dim = 96, c.vocab_size = 97, c.max_seq_len = 64;
  c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 24, c.qk_norm = true;
  c.rope_style = RopeStyle::half, c.rope_theta = 1e6, c.norm_eps = 1e-6;
  c.validate();
  return c;
}

// One forward and backward (random weights, fixed batch); stories260K's shape by default.
Pass forward_backward(Backend& be, const ModelConfig& cfg = preset_config("stories260k")) {
  Model m(cfg);
  init_random(m, 11);
  Workspace ws(m.cfg, 2, 32);
  for (size_t i = 0; i < ws.inputs.size(); ++i) {
    ws.inputs[i] = int32_t((i * 37 + 5) % size_t(m.cfg.vocab_size));
    ws.targets[i] = int32_t((i * 53 + 3) % size_t(m.cfg.vocab_size));
  }
  if (CompiledPrograms* programs = be.caps().programs) programs->prepare_training(ws.dims);
  m.zero_grads();
  Pass r;
  r.loss = forward(be, m, ws);
  backward(be, m, ws, 1.0f);
  r.grads.assign(m.grads.begin(), m.grads.end());
  r.specs = m.table.specs();
  return r;
}

// fp16 programs against the fp32 cpu backend: every parameter's gradient within 5e-2 of its own
// scale (fp16 rounding through a few programs stays well inside; a stage's gradient counted
// twice, or missing, is off by its whole size).
void expect_like_cpu(const Pass& got, const Pass& cpu, const std::string& what) {
  EXPECT_NEAR(got.loss, cpu.loss, 2e-2 * std::fabs(cpu.loss)) << what;
  for (const ParamSpec& s : cpu.specs) {
    double scale = 0, worst = 0;
    for (size_t i = s.offset; i < s.offset + s.numel(); ++i) {
      scale = std::max(scale, double(std::fabs(cpu.grads[i])));
      worst = std::max(worst, double(std::fabs(got.grads[i] - cpu.grads[i])));
    }
    EXPECT_LE(worst, 5e-2 * scale) << what << ": " << s.name << " off by " << worst << " of " << scale;
  }
}

TEST(AneFallback, RejectedAtCompileByNameTheStageRunsOnTheCpu) {
  auto cpu = make_backend("cpu");
  const Pass want = forward_backward(*cpu);
  auto be = fake_backend("fail=compile,program=attention_bwd");
  const Pass got = forward_backward(*be);
  expect_like_cpu(got, want, "attention_bwd rejected at compile");
  const auto notices = be->take_fallbacks();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].kernel, "attention_bwd");
  EXPECT_EQ(notices[0].step, "compile");
  EXPECT_NE(notices[0].reason.find("anetrain.fake-ane"), std::string::npos);  // the NSError's domain
  // Kept for the user to inspect: the program's text and weights in the temp folder, by process.
  const std::filesystem::path kept = notices[0].kept;
  EXPECT_EQ(kept.parent_path().parent_path(), std::filesystem::temp_directory_path()) << kept;
  EXPECT_EQ(kept.parent_path().filename().string(), "anetrain-rejected-" + std::to_string(::getpid()));
  EXPECT_TRUE(std::filesystem::is_regular_file(kept / "model.mil")) << kept;
  EXPECT_TRUE(std::filesystem::is_directory(kept / "weights")) << kept;
  EXPECT_TRUE(be->take_fallbacks().empty());  // reported once
}

TEST(AneFallback, RejectedAtEvaluateMidBackwardCountsNothingTwice) {
  // attention_bwd is the second program of the attention backward: by then wo_bwd has run. The
  // gradients must still be the cpu backend's, not the cpu's plus a partial programs' share.
  auto cpu = make_backend("cpu");
  const Pass want = forward_backward(*cpu);
  auto be = fake_backend("fail=evaluate,program=attention_bwd");
  const Pass got = forward_backward(*be);
  expect_like_cpu(got, want, "attention_bwd rejected at evaluate");
  const auto notices = be->take_fallbacks();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].step, "evaluate");
}

TEST(AneFallback, RejectedAfterQkNormGradientsAccumulatedTheyAreNotCountedTwice) {
  // kv_bwd (and gate_up_bwd) are dual products, the last programs of their backward stages: by
  // then QK-norm's gradients have accumulated; the fallback must restore them first.
  auto cpu = make_backend("cpu");
  const Pass want = forward_backward(*cpu, tiny_qwen3());
  auto be = fake_backend("fail=evaluate,program=dual_linear_*");
  const Pass got = forward_backward(*be, tiny_qwen3());
  expect_like_cpu(got, want, "dual products rejected at evaluate");
  std::set<std::string> kernels;
  for (const auto& n : be->take_fallbacks()) kernels.insert(n.kernel);
  EXPECT_EQ(kernels.size(), 2u);
}

TEST(AneFallback, ErrorsThatAreNotRejectionsAreNotSwallowed) {
  // The framework failing to make an IOSurface is not the Neural Engine refusing a program: it
  // must reach the caller, not hide behind the CPU's answer (nor count as a fallback).
  auto be = fake_backend("fail=surface");
  Model m(preset_config("stories260k"));
  Workspace ws(m.cfg, 1, 32);
  try {
    be->prepare_training(ws.dims);
    FAIL() << "a surface failure passed silently";
  } catch (const ane::ProgramRejected& e) {
    FAIL() << "a surface failure was taken for a rejection: " << e.what();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("surface"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(be->take_fallbacks().empty());
}

TEST(AneFallback, RejectedByOperationEveryStageUsingItFallsBack) {
  auto cpu = make_backend("cpu");
  const Pass want = forward_backward(*cpu);
  auto be = fake_backend("fail=compile,op=softmax");  // both attention programs, nothing else
  const Pass got = forward_backward(*be);
  expect_like_cpu(got, want, "softmax rejected");
  std::set<std::string> kernels;
  for (const auto& n : be->take_fallbacks()) kernels.insert(n.kernel);
  EXPECT_EQ(kernels, (std::set<std::string>{"attention_fwd", "attention_bwd"}));
}

TEST(AneFallback, StrictModeRefusesAndNamesEveryRejectedProgram) {
  auto be = fake_backend("fail=compile,program=attention_*; fail=compile,program=ffn_fwd");
  be->allow_program_fallback(false);
  Model m(preset_config("stories260k"));
  Workspace ws(m.cfg, 1, 32);
  try {
    be->prepare_training(ws.dims);
    FAIL() << "no error under --ane-strict";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rejected 3 program"), std::string::npos) << msg;
    for (const char* k : {"attention_fwd", "attention_bwd", "ffn_fwd"}) EXPECT_NE(msg.find(k), std::string::npos) << k;
  }
}

}  // namespace
}  // namespace anetrain::test
