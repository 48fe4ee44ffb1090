// The runtime when the framework misbehaves, through the fake's options (fake_api.h): odd model
// identifiers, a failure at every step of a compile, evaluations that fail once, classes and
// selectors a macOS update removed, and what an error message must carry.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "backends/ane/fake/fake_api.h"
#include "backends/ane/runtime/runtime.h"
#include "mil/fp16.h"

#include "../op_test_util.h"
#include "runtime_test_programs.h"

namespace anetrain::ane {
namespace {

using test::error_of;
namespace fs = std::filesystem;

// A temp directory of the test's own, with a file of a "user" in it.
struct UserTemp {
  fs::path dir = fs::temp_directory_path() / ("anetrain-test-runtime-" + std::to_string(::getpid()) + "-" +
                                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  UserTemp() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(dir / "users-file.txt") << "not the runtime's";
  }
  ~UserTemp() { fs::remove_all(dir); }
  size_t entries() const { return size_t(std::distance(fs::directory_iterator(dir), fs::directory_iterator())); }
};

FakeOptions in(const UserTemp& t) {
  FakeOptions o;
  o.temp_dir = t.dir.string();
  return o;
}

mil::Tensor random_input(const mil::Type& t, uint32_t seed) {
  mil::Tensor x = mil::Tensor::zeros(t);
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& v : *x.data) v = nd(rng);
  mil::round_to_fp16(x.ptr(), x.numel());
  return x;
}

void expect_nothing_live(const FakeCensus& c) {
  EXPECT_EQ(c.models, 0);
  EXPECT_EQ(c.surfaces, 0);
  EXPECT_EQ(c.requests, 0);
  EXPECT_EQ(c.loaded, 0);
}

TEST(AneRuntimeFailures, UnusableModelIdentifiersAreRefusedAndTheTempDirSurvives) {
  // An empty identifier made the model folder the temp directory itself, which teardown removed.
  for (const std::string id : {"", ".", "..", "a/b", "..\\up", "/abs"}) {
    SCOPED_TRACE("id '" + id + "'");
    UserTemp temp;
    FakeOptions o = in(temp);
    o.model_id = id;
    auto census = std::make_shared<FakeCensus>();
    {
      AneRuntime rt(make_fake_api(o, census));
      const std::string e = error_of([&] { rt.compile(linear_program(32, 32, 32)); });
      EXPECT_NE(e.find(id.empty() ? "no identifier" : "not a plain folder name"), std::string::npos) << e;
      EXPECT_NE(e.find("linear_32x32"), std::string::npos) << e;
      expect_nothing_live(*census);
    }
    EXPECT_TRUE(fs::exists(temp.dir / "users-file.txt"));
    EXPECT_EQ(temp.entries(), 1u);
  }
}

TEST(AneRuntimeFailures, OnlyFoldersThisProcessCreatedAreRemoved) {
  UserTemp temp;
  FakeOptions o = in(temp);
  o.model_id = "preexisting";
  fs::create_directories(temp.dir / "preexisting");
  std::ofstream(temp.dir / "preexisting" / "keep.txt") << "x";
  {
    AneRuntime rt(make_fake_api(o));
    const int h = rt.compile(linear_program(32, 32, 32));
    rt.evaluate(h, mil::Tensor::zeros(linear_program(32, 32, 32).program.inputs[0].second));
  }
  EXPECT_TRUE(fs::exists(temp.dir / "preexisting" / "keep.txt")) << "a folder the runtime found was removed";
  // Two runtimes meeting the same identifier: the one that created the folder does not pull it
  // from under the other; the last one removes it.
  o.model_id = "shared";
  auto a = std::make_unique<AneRuntime>(make_fake_api(o));
  a->compile(linear_program(32, 32, 32));
  auto b = std::make_unique<AneRuntime>(make_fake_api(o));
  b->compile(linear_program(32, 32, 32));
  a.reset();
  EXPECT_TRUE(fs::exists(temp.dir / "shared" / "model.mil"));
  b.reset();
  EXPECT_FALSE(fs::exists(temp.dir / "shared"));
}

TEST(AneRuntimeFailures, WeightPathsOutsideTheModelFolderAreRefused) {
  UserTemp temp;
  KernelProgram k = linear_program(32, 32, 32);
  k.blobs["../escaped.bin"] = {1, 2, 3};
  auto census = std::make_shared<FakeCensus>();
  AneRuntime rt(make_fake_api(in(temp), census));
  EXPECT_NE(error_of([&] { rt.compile(k); }).find("not a path inside the model folder"), std::string::npos);
  EXPECT_FALSE(fs::exists(temp.dir / "escaped.bin"));
  EXPECT_EQ(temp.entries(), 1u) << "the half-written model folder stays";
  expect_nothing_live(*census);
}

// Each step of a compile failing for good: an error naming the program and the step, and nothing
// of the program left — no model, loaded or not, no surface or request, no folder.
TEST(AneRuntimeFailures, EveryFailedStepOfACompileLeavesNothingBehind) {
  const std::pair<FakeStep, const char*> steps[] = {{FakeStep::compile, "ANE compile of program"},
                                                    {FakeStep::load, "failed twice"},
                                                    {FakeStep::surface, "input surface"},
                                                    {FakeStep::request, "request"}};
  for (const auto& [step, words] : steps) {
    SCOPED_TRACE(words);
    UserTemp temp;
    FakeOptions o = in(temp);
    o.faults.push_back({step, "", "", -1});
    auto census = std::make_shared<FakeCensus>();
    AneRuntime rt(make_fake_api(o, census));
    const std::string e = error_of([&] { rt.compile(linear_program(32, 32, 32)); });
    EXPECT_NE(e.find(words), std::string::npos) << e;
    EXPECT_NE(e.find("linear_32x32"), std::string::npos) << e;
    expect_nothing_live(*census);
    EXPECT_EQ(temp.entries(), 1u) << "the model folder was left behind";
  }
}

TEST(AneRuntimeFailures, ALoadThatFailsOnceIsRetried) {
  UserTemp temp;
  FakeOptions o = in(temp);
  o.faults.push_back({FakeStep::load, "linear_*", "", 1});
  auto census = std::make_shared<FakeCensus>();
  AneRuntime rt(make_fake_api(o, census));
  rt.compile(linear_program(32, 32, 32));
  EXPECT_EQ(census->loads, 2);
  EXPECT_EQ(census->loaded, 1);
}

TEST(AneRuntimeFailures, AnEvaluationThatFailsOnceIsRetried) {
  KernelProgram k = linear_program(32, 32, 32);
  const mil::Tensor x = random_input(k.program.inputs[0].second, 3);
  AneRuntime plain(make_fake_api(FakeOptions{}));
  const std::vector<float> want = *plain.evaluate(plain.compile(k), x).data;

  FakeOptions once;
  once.faults.push_back({FakeStep::evaluate, "linear_32x32", "", 1});
  AneRuntime rt(make_fake_api(once));
  const int h = rt.compile(k);
  EXPECT_EQ(*rt.evaluate(h, x).data, want);
  EXPECT_EQ(rt.evaluate_retries(), 1);
  EXPECT_EQ(*rt.evaluate(h, x).data, want);
  EXPECT_EQ(rt.evaluate_retries(), 1);

  FakeOptions twice;
  twice.faults.push_back({FakeStep::evaluate, "", "", 2});
  AneRuntime failing(make_fake_api(twice));
  const int hf = failing.compile(k);
  const std::string e = error_of([&] { failing.evaluate(hf, x); });
  EXPECT_NE(e.find("failed twice"), std::string::npos) << e;
  EXPECT_NE(e.find("retried: evaluateWithQoS:options:request:error: -> "), std::string::npos) << e;
  EXPECT_EQ(*failing.evaluate(hf, x).data, want) << "a later evaluation works again";
}

TEST(AneRuntimeFailures, MissingSelectorsAndClassesAreNamedWithTheMacOSVersion) {
  FakeOptions o;
  o.os_version = "Version 99.1 (Build 99A1)";
  o.missing = {"loadWithQoS:options:error:", "objectWithIOSurface:"};
  std::string e = error_of([&] { AneRuntime rt(make_fake_api(o)); });
  EXPECT_NE(e.find("macOS Version 99.1 (Build 99A1)"), std::string::npos) << e;
  EXPECT_NE(e.find("-[_ANEInMemoryModel loadWithQoS:options:error:]"), std::string::npos) << e;
  EXPECT_NE(e.find("+[_ANEIOSurfaceObject objectWithIOSurface:]"), std::string::npos) << e;
  EXPECT_EQ(e.find("compileWithQoS"), std::string::npos) << "only the missing ones: " << e;
  o.missing = {"_ANERequest"};
  e = error_of([&] { AneRuntime rt(make_fake_api(o)); });
  EXPECT_NE(e.find("class _ANERequest"), std::string::npos) << e;
  EXPECT_EQ(e.find("requestWithInputs"), std::string::npos) << "a missing class is named once: " << e;
}

TEST(AneRuntimeFailures, ErrorsCarryTheNSErrorsDescriptionDomainAndCode) {
  FakeOptions o;
  o.faults.push_back({FakeStep::compile, "", "", -1});
  AneRuntime rt(make_fake_api(o));
  const std::string e = error_of([&] { rt.compile(linear_program(32, 32, 32)); });
  EXPECT_NE(e.find("compileWithQoS:options:error: -> Error Domain=anetrain.fake-ane Code=1000 \"injected compile failure"),
            std::string::npos) << e;
  EXPECT_NE(e.find("(NSError domain anetrain.fake-ane, code 1000 = 0x3e8)"), std::string::npos) << e;
  EXPECT_EQ(ApiError({"modelWithMILText:weights:optionsPlist:", "returned nil", "", 0}).str(),
            "modelWithMILText:weights:optionsPlist: -> returned nil (no NSError)");
}

TEST(AneRuntimeFailures, ProgramsAreRejectedByNameOrByTheOperationsTheyUse) {
  const KernelProgram with_sigmoid = test_programs::scaled("scaled_sigmoid", true);
  const KernelProgram linear = linear_program(32, 32, 32);

  FakeOptions by_op;
  by_op.faults.push_back({FakeStep::compile, "", "sigmoid", -1});
  AneRuntime rt(make_fake_api(by_op));
  rt.compile(linear);
  rt.compile(test_programs::scaled("scaled", false));
  EXPECT_NE(error_of([&] { rt.compile(with_sigmoid); }).find("injected compile failure of program 'scaled_sigmoid'"),
            std::string::npos);

  FakeOptions by_name = FakeOptions::parse("fail=compile,program=linear_*");
  AneRuntime rn(make_fake_api(by_name));
  rn.compile(with_sigmoid);
  EXPECT_NE(error_of([&] { rn.compile(linear); }).find("linear_32x32"), std::string::npos);
  EXPECT_NE(error_of([&] { rn.compile(linear); }).find("linear_32x32"), std::string::npos) << "every time, not once";
}

TEST(AneRuntimeFailures, TheEnvironmentVariableSpeaksTheOptionsSyntax) {
  const FakeOptions o = FakeOptions::parse(
      " fail=evaluate,program=ffn_*,op=matmul,times=2 ; fail=surface; model_id=; missing=_ANERequest; os=Version 1");
  ASSERT_EQ(o.faults.size(), 2u);
  EXPECT_EQ(o.faults[0].step, FakeStep::evaluate);
  EXPECT_EQ(o.faults[0].program, "ffn_*");
  EXPECT_EQ(o.faults[0].op, "matmul");
  EXPECT_EQ(o.faults[0].times, 2);
  EXPECT_EQ(o.faults[1].step, FakeStep::surface);
  EXPECT_EQ(o.faults[1].times, -1);
  ASSERT_TRUE(o.model_id.has_value());
  EXPECT_EQ(*o.model_id, "");
  EXPECT_EQ(o.missing, std::vector<std::string>{"_ANERequest"});
  EXPECT_EQ(o.os_version, "Version 1");
  for (const char* bad : {"fail=compil", "fail=load,times=0", "fail=load,colour=red", "fail=surface,program=x",
                          "failure=compile", "missing", "fail=evaluate,op="})
    EXPECT_NE(error_of([&] { FakeOptions::parse(bad); }).find("ANETRAIN_FAKE_ANE"), std::string::npos) << bad;
  EXPECT_TRUE(fake_fault_matches({FakeStep::compile, "dual_linear_*", "", -1}, "dual_linear_64x64", {}));
  EXPECT_FALSE(fake_fault_matches({FakeStep::compile, "linear_*", "", -1}, "dual_linear_64x64", {}));
  EXPECT_FALSE(fake_fault_matches({FakeStep::compile, "linear_*", "softmax", -1}, "linear_64x64", {"matmul"}));

  // make_fake_api() without options reads the variable: the CLI's and the C API's ane-fake.
  ::setenv("ANETRAIN_FAKE_ANE", "fail=evaluate,times=1", 1);
  AneRuntime rt(make_fake_api());
  ::unsetenv("ANETRAIN_FAKE_ANE");
  KernelProgram k = linear_program(32, 32, 32);
  rt.evaluate(rt.compile(k), mil::Tensor::zeros(k.program.inputs[0].second));
  EXPECT_EQ(rt.evaluate_retries(), 1);
}

}  // namespace
}  // namespace anetrain::ane
