// Staged inputs (ane/kernels/executor.h): a persistent input per (layer, program) whose weight
// columns are converted once per weight version and whose activation columns alone are
// converted per evaluation — on both executors, and through the backend while training.
#include <gtest/gtest.h>

#include <random>

#include "backends/ane/sim_executor.h"
#include "backends/ane/fake/fake_api.h"
#include "backends/ane/runtime/runtime.h"
#include "mil/fp16.h"
#include "backends/ane/ane_backend.h"
#include "contract/registry.h"
#include "model/config.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"
#include "train/optimizer.h"

#include "../op_test_util.h"

namespace anetrain::ane {
namespace {

using test::error_of;

mil::Tensor random_tensor(const mil::Type& t, uint32_t seed) {
  mil::Tensor x = mil::Tensor::zeros(t);
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& v : *x.data) v = nd(rng);  // not rounded: the executor converts
  return x;
}

std::vector<std::unique_ptr<Executor>> both_executors() {
  std::vector<std::unique_ptr<Executor>> v;
  v.push_back(std::make_unique<SimExecutor>());
  v.push_back(std::make_unique<AneRuntime>(make_fake_api(FakeOptions{})));
  return v;
}

TEST(AneStaging, StagedInputsGiveTheWholeInputsNumbersAndConvertWeightsOnce) {
  KernelProgram k = linear_program(64, 32, 32);
  const mil::Type type = k.program.inputs[0].second;
  const int C = int(type.shape[1]), W = int(type.shape[3]), A = 32;
  // Two layers' inputs for the one program: different weights, then new activations each call.
  const mil::Tensor layer[2] = {random_tensor(type, 1), random_tensor(type, 2)};
  for (auto& ex : both_executors()) {
    SCOPED_TRACE(ex->name());
    const int h = ex->compile(k);
    const int s0 = ex->open_staged(h, A), s1 = ex->open_staged(h, A);
    ex->write_weights(s0, layer[0]);
    ex->write_weights(s1, layer[1]);
    const uint64_t weight_bytes = uint64_t(C) * (W - A) * 2;
    EXPECT_EQ(ex->conversions().weight_bytes, 2 * weight_bytes);
    for (uint32_t call = 0; call < 3; ++call) {
      for (int l = 0; l < 2; ++l) {
        mil::Tensor whole = layer[l];
        const mil::Tensor act = random_tensor(mil::Type::of(type.elem, {1, C, 1, A}), 10 + call * 2 + l);
        for (int c = 0; c < C; ++c) std::copy_n(act.ptr() + c * A, A, whole.ptr() + c * W);
        mil::round_to_fp16(whole.ptr(), whole.numel());
        const std::vector<float> want = *ex->evaluate(h, whole).data;  // the whole input, converted
        EXPECT_EQ(*ex->evaluate_staged(l == 0 ? s0 : s1, act).data, want) << "layer " << l << " call " << call;
        // The whole-input shape is accepted too; only its activation columns are read.
        EXPECT_EQ(*ex->evaluate_staged(l == 0 ? s0 : s1, whole).data, want);
      }
    }
    EXPECT_EQ(ex->conversions().weight_bytes, 2 * weight_bytes) << "weights converted again";
    EXPECT_EQ(ex->conversions().activation_bytes, 12 * uint64_t(C) * A * 2);
  }
}

TEST(AneStaging, StagedInputsRefuseWrongShapes) {
  KernelProgram k = linear_program(64, 32, 32);
  const mil::Type type = k.program.inputs[0].second;
  for (auto& ex : both_executors()) {
    SCOPED_TRACE(ex->name());
    const int h = ex->compile(k);
    EXPECT_NE(error_of([&] { ex->open_staged(h, int(type.shape[3]) + 1); }).find("activation columns"), std::string::npos);
    const int s = ex->open_staged(h, 32);
    const mil::Tensor narrow = mil::Tensor::zeros(mil::Type::of(type.elem, {1, type.shape[1], 1, 32}));
    EXPECT_NE(error_of([&] { ex->write_weights(s, narrow); }).find("linear_64x32"), std::string::npos);
    const mil::Tensor odd = mil::Tensor::zeros(mil::Type::of(type.elem, {1, type.shape[1], 1, 31}));
    EXPECT_NE(error_of([&] { ex->evaluate_staged(s, odd); }).find("staged input"), std::string::npos);
  }
}

// Trains stories260K's shape for two optimizer steps of three micro-batches on `backend`,
// returning the losses and the executor's conversion counts after each micro-batch.
struct Trace {
  std::vector<double> losses;
  std::vector<ConversionCounts> after;
  std::vector<int> live_surfaces;  // the fake's, when given
};

Trace train(AneBackend& backend, const Executor& ex, const FakeCensus* census = nullptr) {
  Model m(preset_config("stories260k"));
  init_random(m, 5);
  Workspace ws(m.cfg, 2, 16);
  for (size_t i = 0; i < ws.inputs.size(); ++i) {
    ws.inputs[i] = int32_t((i * 37 + 11) % size_t(m.cfg.vocab_size));
    ws.targets[i] = int32_t((i * 53 + 7) % size_t(m.cfg.vocab_size));
  }
  AdamWConfig oc;
  oc.lr = 1e-2;
  oc.warmup = 0;
  AdamW opt(m, oc);
  Trace t;
  for (int step = 0; step < 2; ++step) {
    m.zero_grads();
    for (int micro = 0; micro < 3; ++micro) {
      t.losses.push_back(forward(backend, m, ws));
      backward(backend, m, ws, 1.0f / 3);
      t.after.push_back(ex.conversions());
      if (census) t.live_surfaces.push_back(census->surfaces);
    }
    opt.step(m);
  }
  t.losses.push_back(forward(backend, m, ws));
  return t;
}

TEST(AneStaging, TrainingConvertsEachWeightOncePerOptimizerStep) {
  auto census = std::make_shared<FakeCensus>();
  auto runtime = std::make_unique<AneRuntime>(make_fake_api(FakeOptions{}, census));
  const AneRuntime& rt = *runtime;
  AneBackend fake("ane-fake", std::move(runtime), make_backend("cpu"));
  const Trace t = train(fake, rt, census.get());
  for (int step = 0; step < 2; ++step) {
    const ConversionCounts& first = t.after[size_t(step) * 3];
    EXPECT_GT(first.weight_bytes, step == 0 ? 0 : t.after[2].weight_bytes) << "step " << step << " restages its weights";
    for (int micro = 1; micro < 3; ++micro) {
      const ConversionCounts& c = t.after[size_t(step) * 3 + micro];
      const ConversionCounts& prev = t.after[size_t(step) * 3 + micro - 1];
      EXPECT_EQ(c.weight_bytes, first.weight_bytes) << "step " << step << " micro-batch " << micro;
      EXPECT_GT(c.activation_bytes, prev.activation_bytes);
    }
  }
  // Once per version means the same amount at each step: every staged input's weights, once.
  EXPECT_EQ(t.after[3].weight_bytes - t.after[2].weight_bytes, t.after[0].weight_bytes);
  // Each (layer, program) keeps its surface: after the first micro-batch no step opens another.
  for (int live : t.live_surfaces) EXPECT_EQ(live, t.live_surfaces[0]);
}

TEST(AneStaging, TrainingLossesAreBitIdenticalOnAneFakeAndAneSim) {
  auto runtime = std::make_unique<AneRuntime>(make_fake_api(FakeOptions{}));
  const Executor& rt = *runtime;
  AneBackend fake("ane-fake", std::move(runtime), make_backend("cpu"));
  auto simx = std::make_unique<SimExecutor>();
  const Executor& sx = *simx;
  AneBackend simb("ane-sim", std::move(simx), make_backend("cpu"));
  const Trace a = train(fake, rt), b = train(simb, sx);
  ASSERT_EQ(a.losses.size(), b.losses.size());
  for (size_t i = 0; i < a.losses.size(); ++i) EXPECT_EQ(a.losses[i], b.losses[i]) << i;
}

}  // namespace
}  // namespace anetrain::ane
