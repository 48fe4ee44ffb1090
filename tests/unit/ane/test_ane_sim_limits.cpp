// The limits the real ANE compiler and runtime enforce, reproduced with the same meaning: each
// one refused here is refused on the hardware (seed-system.md 8.6), so no surprise waits on a Mac.
#include <gtest/gtest.h>

#include <filesystem>

#include "mil/blob.h"
#include "mil/builder.h"
#include "mil/printer.h"
#include "mil/sim/compiler.h"

#include "../op_test_util.h"

namespace anetrain::sim {
namespace {

using test::error_of;

namespace fs = std::filesystem;
using mil::Builder;
using mil::ElemType;
using mil::Type;
using mil::Var;


fs::path temp_model_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("anetrain_sim_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(p / "weights");
  return p;
}

TEST(AneSimLimits, MultiInputRequestFailsWith0x1d) {
  Builder b;
  Var x = b.input("x", Type::fp16({1, 2, 1, 2}));
  Var y = b.input("y", Type::fp16({1, 2, 1, 2}));
  mil::Program p = b.finish({b.add(x, y, "s")});
  Compiler rt;
  auto m = rt.compile(p, ".");  // compiles, as on the hardware: the request is what fails
  Tensor t = Tensor::zeros(Type::fp16({1, 2, 1, 2}));
  std::string e = error_of([&] { m->evaluate({t, t}); });
  EXPECT_NE(e.find("error 0x1d"), std::string::npos) << e;
}

TEST(AneSimLimits, IoMustBeDenseRank4WithBatch1) {
  for (mil::Shape bad : {mil::Shape{2, 8, 1, 4}, mil::Shape{8, 4}, mil::Shape{1, 8, 4}}) {
    Builder b;
    Var x = b.input("x", Type::fp16(bad));
    mil::Program p = b.finish({b.sigmoid(x, "y")});
    Compiler rt;
    std::string e = error_of([&] { rt.compile(p, "."); });
    EXPECT_NE(e.find("ANE compile failed"), std::string::npos) << e;
    EXPECT_NE(e.find("[1,C,H,W]"), std::string::npos) << e;
    EXPECT_EQ(rt.compiles(), 0);
  }
  Builder ok;
  Var x = ok.input("x", Type::fp16({1, 8, 1, 4}));
  Compiler rt;
  EXPECT_NO_THROW(rt.compile(ok.finish({ok.reshape(x, {1, 4, 1, 8}, "y")}), "."));
}

TEST(AneSimLimits, ConvWith32000InputChannelsIsRejectedButNotOutputChannels) {
  fs::path dir = temp_model_dir("conv");
  std::vector<float> w(32000, 0.5f);
  mil::BlobWriter blob;
  uint64_t off = blob.add_fp16(w.data(), w.size());
  blob.write((dir / "weights" / "w.bin").string());
  Compiler rt;
  {  // classifier backward shape: 32000 → 1
    Builder b;
    Var x = b.input("x", Type::fp16({1, 32000, 1, 1}));
    Var wt = b.blob("w", Type::fp16({1, 32000, 1, 1}), "@model_path/weights/w.bin", off);
    mil::Program p = b.finish({b.conv(x, wt, 1, "y")});
    std::string e = error_of([&] { rt.compile(p, dir.string()); });
    EXPECT_NE(e.find("32000 input channels"), std::string::npos) << e;
    EXPECT_NE(e.find("use matmul"), std::string::npos) << e;
  }
  {  // classifier forward shape: 1 → 32000 compiles and runs
    Builder b;
    Var x = b.input("x", Type::fp16({1, 1, 1, 1}));
    Var wt = b.blob("w", Type::fp16({32000, 1, 1, 1}), "@model_path/weights/w.bin", off);
    mil::Program p = b.finish({b.conv(x, wt, 1, "y")});
    auto m = rt.compile(p, dir.string());
    Tensor in = Tensor::zeros(Type::fp16({1, 1, 1, 1}));
    in.ptr()[0] = 3.0f;
    auto out = m->evaluate({in});
    EXPECT_EQ(out[0].numel(), 32000u);
    EXPECT_EQ(out[0].ptr()[31999], 1.5f);
  }
  fs::remove_all(dir);
}

TEST(AneSimLimits, SdpaIgnoresItsMaskWithAWarning) {
  auto program = [](bool with_mask) {
    Builder b;
    Var x = b.input("x", Type::fp16({1, 2, 4, 8}));
    std::vector<double> m(16, 0.0);
    for (int i = 0; i < 4; ++i)
      for (int j = i + 1; j < 4; ++j) m[i * 4 + j] = -65504;
    Var mask = b.tensor("mask", Type::fp16({1, 1, 4, 4}), m);
    Var att = b.sdpa(x, x, x, "att", with_mask ? &mask : nullptr);
    return b.finish({b.reshape(att, {1, 64, 1, 1}, "out")});
  };
  Compiler rt;
  auto masked = rt.compile(program(true), ".");
  auto plain = rt.compile(program(false), ".");
  ASSERT_EQ(masked->warnings().size(), 1u);
  EXPECT_NE(masked->warnings()[0].find("ignores"), std::string::npos);
  EXPECT_TRUE(plain->warnings().empty());
  Tensor in = Tensor::zeros(Type::fp16({1, 2, 4, 8}));
  for (size_t i = 0; i < in.numel(); ++i) in.ptr()[i] = float(int(i % 7) - 3) * 0.25f;
  EXPECT_EQ(*masked->evaluate({in})[0].data, *plain->evaluate({in})[0].data);
}

TEST(AneSimLimits, CompileBudgetOf119PerProcess) {
  Builder b;
  Var x = b.input("x", Type::fp16({1, 2, 1, 2}));
  mil::Program p = b.finish({b.sigmoid(x, "y")});
  Compiler rt;  // a fresh "process"
  for (int i = 0; i < kCompileBudget; ++i) ASSERT_NO_THROW(rt.compile(p, ".")) << i;
  std::string e = error_of([&] { rt.compile(p, "."); });
  EXPECT_NE(e.find("ANE compile failed"), std::string::npos) << e;
  EXPECT_NE(e.find("119"), std::string::npos) << e;
  EXPECT_EQ(rt.compiles(), kCompileBudget);
}

TEST(AneSimLimits, WeightsAreBakedAtCompileTime) {
  // Overwriting a blob after compiling changes nothing until the program is compiled again.
  fs::path dir = temp_model_dir("baked");
  auto write_w = [&](float v) {
    std::vector<float> w(4, v);
    mil::BlobWriter blob;
    blob.add_fp16(w.data(), w.size());
    blob.write((dir / "weights" / "w.bin").string());
  };
  write_w(2.0f);
  Builder b;
  Var x = b.input("x", Type::fp16({1, 4, 1, 1}));
  Var w = b.blob("w", Type::fp16({1, 4, 1, 1}), "@model_path/weights/w.bin", 64);
  mil::Program p = b.finish({b.mul(x, w, "y")});
  Compiler rt;
  auto m = rt.compile(p, dir.string());
  Tensor in = Tensor::zeros(Type::fp16({1, 4, 1, 1}));
  in.ptr()[0] = 1.0f;
  EXPECT_EQ(m->evaluate({in})[0].ptr()[0], 2.0f);
  write_w(3.0f);
  EXPECT_EQ(m->evaluate({in})[0].ptr()[0], 2.0f);
  EXPECT_EQ(rt.compile(p, dir.string())->evaluate({in})[0].ptr()[0], 3.0f);
  fs::remove_all(dir);
}

TEST(AneSimLimits, CheckReportsEveryViolationWithItsSource) {
  Builder b;
  Var x = b.input("x", Type::fp16({1, 8, 4}));
  Var y = b.input("y", Type::fp16({1, 8, 4}));
  auto v = check_ane_limits(b.finish({b.add(x, y, "z")}));
  ASSERT_EQ(v.size(), 4u);  // two inputs; two inputs and one output not rank 4
  EXPECT_EQ(v[0].limit, "single-input");
  for (const auto& each : v) EXPECT_FALSE(each.source.empty());
}

}  // namespace
}  // namespace anetrain::sim
