// A program the Neural Engine rejects costs its stage, not the run (issue 22, item 4): through the
// fake framework told to reject chosen programs — by name and by operation, at compile and at
// evaluate — the stage runs on the CPU, gradients are those of the cpu backend (nothing counted
// twice when a backward fails midway), the fallback is reported once, and --ane-strict refuses.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "ane/runtime/fake_api.h"
#include "ane/runtime/runtime.h"
#include "backends/ane_sim/ane_backend.h"
#include "core/error.h"
#include "model/config.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"

namespace anetrain::test {
namespace {

std::unique_ptr<AneBackend> fake_backend(const std::string& faults) {
  return std::make_unique<AneBackend>("ane-fake",
                                      std::make_unique<ane::AneRuntime>(ane::make_fake_api(ane::FakeOptions::parse(faults))));
}

struct Pass {
  double loss;
  std::vector<float> grads;
};

// One forward and backward of stories260K's shape (random weights, fixed batch).
Pass forward_backward(Backend& be) {
  Model m(preset_config("stories260k"));
  init_random(m, 11);
  Workspace ws(m.cfg, 2, 32);
  for (size_t i = 0; i < ws.inputs.size(); ++i) {
    ws.inputs[i] = int32_t((i * 37 + 5) % size_t(m.cfg.vocab_size));
    ws.targets[i] = int32_t((i * 53 + 3) % size_t(m.cfg.vocab_size));
  }
  be.prepare_training(ws.dims);
  m.zero_grads();
  Pass r;
  r.loss = forward(be, m, ws);
  backward(be, m, ws, 1.0f);
  r.grads.assign(m.grads.begin(), m.grads.end());
  return r;
}

// fp16 programs against the fp32 cpu backend: within the stage tolerance of each gradient's scale.
void expect_like_cpu(const Pass& got, const Pass& cpu, const std::string& what) {
  EXPECT_NEAR(got.loss, cpu.loss, 2e-2 * std::fabs(cpu.loss)) << what;
  double scale = 0, worst = 0;
  for (size_t i = 0; i < cpu.grads.size(); ++i) {
    scale = std::max(scale, double(std::fabs(cpu.grads[i])));
    worst = std::max(worst, double(std::fabs(got.grads[i] - cpu.grads[i])));
  }
  EXPECT_LE(worst, 5e-2 * scale) << what << ": gradients off by " << worst << " of " << scale;
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
