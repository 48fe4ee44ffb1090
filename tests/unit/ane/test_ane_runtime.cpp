// The hardware runtime's whole sequence (descriptor, temp model folder, compile, load with retry,
// IOSurfaces, request, evaluate, unload, cleanup) against the fake private API, which behaves as
// the seed documents the framework and executes through ane-sim.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "backends/ane/sim_executor.h"
#include "mil/builder.h"
#include "backends/ane/fake/fake_api.h"
#include "backends/ane/runtime/runtime.h"
#include "mil/fp16.h"
#include "backends/ane/ane_backend.h"
#include "contract/registry.h"
#include "core/mapped_file.h"

#include "../op_test_util.h"
#include "runtime_test_programs.h"

namespace anetrain::ane {
namespace {

using test::error_of;

namespace fs = std::filesystem;

mil::Tensor random_input(const mil::Type& t, uint32_t seed) {
  mil::Tensor x = mil::Tensor::zeros(t);
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& v : *x.data) v = nd(rng);
  mil::round_to_fp16(x.ptr(), x.numel());
  return x;
}

TEST(AneRuntime, FakeSequenceGivesTheSimulatorsNumbersBitForBit) {
  KernelProgram k = test_programs::scaled("scaled", true);  // reads a weight blob
  ASSERT_FALSE(k.blobs.empty());
  mil::Tensor in = random_input(k.program.inputs[0].second, 1);
  SimExecutor simx;
  const mil::Tensor want = simx.evaluate(simx.compile(k), in);
  const fs::path temp = fs::temp_directory_path() / ("anetrain-test-sequence-" + std::to_string(::getpid()));
  fs::create_directories(temp);
  FakeOptions o;
  o.temp_dir = temp.string();
  fs::path folder;
  {
    AneRuntime rt(make_fake_api(o));
    int h = rt.compile(k);
    // The compiler's model folder holds the program text and every weight file.
    for (const auto& m : fs::directory_iterator(temp)) folder = m.path();
    ASSERT_FALSE(folder.empty());
    EXPECT_TRUE(fs::exists(folder / "model.mil"));
    for (const auto& [rel, bytes] : k.blobs) EXPECT_TRUE(fs::exists(folder / rel)) << rel;
    const mil::Tensor& got = rt.evaluate(h, in);
    ASSERT_EQ(got.numel(), want.numel());
    EXPECT_EQ(*got.data, *want.data);
    EXPECT_EQ(*rt.evaluate(h, in).data, *want.data);  // a second evaluation through the same request
  }
  EXPECT_FALSE(fs::exists(folder)) << "the runtime must remove its model folder";
  EXPECT_TRUE(fs::exists(temp)) << "the temp directory is not the runtime's to remove";
  fs::remove_all(temp);
}

TEST(AneRuntime, CompileNeedsThePopulatedModelFolder) {
  auto api = make_fake_api(FakeOptions{});
  ApiError err;
  ASSERT_TRUE(api->open(err));
  KernelProgram k = linear_program(32, 4, 32);
  ApiHandle m = api->create_model("unwritten", "program(1.3) {}", k.blobs, err);
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(api->compile(m, kQoS, err));
  EXPECT_NE(err.description.find("populate the model folder first"), std::string::npos) << err.str();
  api->release(m);
}

TEST(AneRuntime, MultiInputRequestFailsWith0x1dAndTheRuntimeRefusesIt) {
  auto api = make_fake_api(FakeOptions{});
  ApiError err;
  KernelProgram k = linear_program(32, 4, 32);
  AneRuntime rt(make_fake_api(FakeOptions{}));
  rt.compile(k);  // a valid program so that the fake has compiled something
  // Straight through the API: a request binding two input surfaces.
  ApiHandle m = api->create_model("two", "program(1.3)", {}, err);
  ApiHandle a = api->create_surface(16, err), b = api->create_surface(16, err), o = api->create_surface(16, err);
  ApiHandle r = api->create_request({a, b}, o, err);
  EXPECT_FALSE(api->evaluate(m, r, kQoS, err));
  EXPECT_EQ(err.code, 0x1d) << err.str();
  EXPECT_NE(err.str().find("0x1d"), std::string::npos) << err.str();
  for (ApiHandle h : {r, a, b, o, m}) api->release(h);
  // The runtime never builds one.
  mil::Builder bl;
  mil::Var x = bl.input("x", mil::Type::of(mil::ElemType::fp16, {1, 4, 1, 4}));
  mil::Var y = bl.input("y", mil::Type::of(mil::ElemType::fp16, {1, 4, 1, 4}));
  KernelProgram two{"two_inputs", bl.finish({bl.add(x, y, "s")}), {}};
  EXPECT_NE(error_of([&] { rt.compile(two); }).find("0x1d"), std::string::npos);
}

TEST(AneRuntime, RefusesClearlyBeforeTheCompilerBudgetRunsOut) {
  AneRuntime rt(make_fake_api(FakeOptions{}), AneRuntime::process_compiles() + 2);
  rt.compile(linear_program(32, 4, 32));
  rt.compile(linear_program(32, 8, 32));
  std::string e = error_of([&] { rt.compile(linear_program(32, 12, 32)); });
  EXPECT_NE(e.find("fails at about 119 per process"), std::string::npos) << e;
}

TEST(AneRuntime, AneFakeBackendTrainsLikeAneSim) {
  // The same stage through both executors: identical programs and data, identical numbers.
  auto fake = make_backend("ane-fake"), simb = make_backend("ane-sim");
  BlockDims d{2, 8, 32, 4, 2, 8, 40, 1e-5f, 0.7f, 1e4f, RopeStyle::interleaved, true};
  const size_t N = size_t(d.N()), D = d.D, F = d.F;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-0.3f, 0.3f);
  auto vec = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
  };
  std::vector<float> norm(D, 1.0f), wg = vec(F * D), wu = vec(F * D), wd = vec(D * F), x = vec(N * D), dout = vec(N * D);
  LayerTensors W{};
  W.ffn_norm = norm.data(), W.w_gate = wg.data(), W.w_up = wu.data(), W.w_down = wd.data();
  std::vector<float> out[2], dx[2], gw[2][4];
  int i = 0;
  for (Backend* be : {fake.get(), simb.get()}) {
    std::vector<float> xn(N * D), rstd(N), g(N * F), up(N * F), h(N * F), f(N * D), dh(N * F), dg(N * F), du(N * F),
        dxn(N * D), dres(N * D);
    for (auto& v : gw[i]) v.assign(F * D, 0.0f);
    gw[i][0].assign(D, 0.0f);
    LayerTensors G{};
    G.ffn_norm = gw[i][0].data(), G.w_gate = gw[i][1].data(), G.w_up = gw[i][2].data(), G.w_down = gw[i][3].data();
    FfnSaved s{xn.data(), rstd.data(), g.data(), up.data(), h.data(), f.data(), nullptr};
    FfnScratch k{dh.data(), dg.data(), du.data(), dxn.data(), dres.data(), nullptr};
    out[i].resize(N * D), dx[i].resize(N * D);
    be->ffn_block_fwd(d, W, x.data(), out[i].data(), s);
    be->ffn_block_bwd(d, W, G, x.data(), s, dout.data(), dx[i].data(), k);
    ++i;
  }
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(dx[0], dx[1]);
  for (int j = 0; j < 4; ++j) EXPECT_EQ(gw[0][j], gw[1][j]) << j;
}

}  // namespace
}  // namespace anetrain::ane
