// `ane bench`'s programs: the seed's sweeps as configurations, each program the seed's statement
// for statement (against the INT8 benchmark's texts in src/mil/seed_benchmarks), inside the proven
// set, and computing what the host reference computes — a check that fails when it should.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "backends/ane/bench_programs.h"
#include "backends/ane/sim_executor.h"
#include "mil/construct.h"
#include "mil/parser.h"
#include "mil/printer.h"
#include "mil/strict.h"

namespace anetrain::ane {
namespace {

namespace fs = std::filesystem;
const fs::path kSeedBenchmarks =
    fs::path(__FILE__).parent_path() / ".." / ".." / ".." / "src" / "mil" / "seed_benchmarks" / "ane_int8_bench";

mil::Program seed_program(const std::string& name) {
  std::ifstream f(kSeedBenchmarks / (name + ".mil"));
  std::stringstream s;
  s << f.rdbuf();
  return mil::parse_program(s.str(), name);
}

// A literal's value whatever its spelling ("[1, 1]" and "[1,1]", "0x1p-3" and "0.125" alike).
std::string value_text(const mil::Literal& l) {
  if (!l.str.empty()) return l.str;
  std::ostringstream s;
  for (double v : l.values) s << v << ",";
  return s.str();
}

// What the two programs compute, statement by statement, leaving out names, blob paths and offsets
// and the weights' values: the W8A8 weights' scale differs on purpose (the seed's 1/8 on random
// codes grows an activation ~200× per layer at 512 channels; ours keeps its variance).
std::vector<std::string> structure(const mil::Program& p) {
  std::vector<std::string> out;
  for (const auto& [name, type] : p.inputs) out.push_back("input " + type.str());
  const std::vector<mil::Construct> c = mil::program_constructs(p);
  mil::ConstantTable constants;
  for (size_t i = 0; i < p.ops.size(); ++i) {
    const mil::Op& op = p.ops[i];
    if (op.kind == "const") {
      constants.add(op.out, &op.attr("val")->value);
      continue;  // consts appear where their readers name them
    }
    std::string s = c[i].key() + " : " + op.type.str();
    if (op.kind == "constexpr_affine_dequantize")
      s += " zero_point=" + op.attr("zero_point")->value.text + " axis=" + op.attr("axis")->value.text;
    for (const char* a : {"strides", "pad", "dilations", "groups", "pad_type", "scale", "output_dtype"}) {
      const mil::Literal* l = constants.arg(op, a);
      if (l) s += std::string(" ") + a + "=" + value_text(*l);
    }
    out.push_back(s);
  }
  out.push_back("outputs " + std::to_string(p.outputs.size()));
  return out;
}

TEST(AneBenchPrograms, TheSweepsAreTheSeeds) {
  EXPECT_EQ(seed_sweep("peak").size(), 16u);  // inmem_peak's 10 chains, inmem_bench's 6 channel counts
  EXPECT_EQ(seed_sweep("sram").size(), 13u);  // sram_probe's 13 sizes
  EXPECT_EQ(seed_sweep("int8").size(), 10u);  // ane_int8_bench's 5 chains, each fp16 and W8A8
  const ConvChainSpec deepest = seed_sweep("peak")[4];
  EXPECT_EQ(deepest.label(), "fp16 512ch 1x64 x128");
  EXPECT_DOUBLE_EQ(deepest.flops(), 2.0 * 512 * 512 * 64 * 128);
  EXPECT_DOUBLE_EQ(deepest.weight_bytes(), 64.0 * 1024 * 1024);  // the seed's "64.0 MB"
  const ConvChainSpec last = seed_sweep("sram").back();
  EXPECT_EQ(last.channels, 8192);
  EXPECT_EQ(last.positions(), 32);
  const ConvChainSpec int8 = seed_sweep("int8")[1];
  EXPECT_EQ(int8.label(), "w8a8 512ch 64x64 x128");
  EXPECT_DOUBLE_EQ(int8.flops(), 2.0 * 512 * 512 * 64 * 64 * 128);  // the seed's 274.88 GOP
  EXPECT_THROW(seed_sweep("bogus"), Error);
}

TEST(AneBenchPrograms, TheChainsAreTheSeedsStatementForStatement) {
  for (ChainPrecision p : {ChainPrecision::fp16, ChainPrecision::w8a8}) {
    const ConvChainSpec spec{"int8", 512, 64, 64, 2, p};
    const mil::Program ours = conv_chain_program(spec, false).program;
    const mil::Program seed = seed_program(p == ChainPrecision::w8a8 ? "w8a8_chain" : "fp16_chain");
    std::vector<std::string> a = structure(ours), b = structure(seed);
    EXPECT_EQ(a.size(), p == ChainPrecision::w8a8 ? 8u : 4u);  // input, W0 c0 q0 dq0 W1 c1 (fp16: c0 c1), outputs
    EXPECT_EQ(a, b) << print_program(ours);

    EXPECT_TRUE(mil::check_strict(ours).empty()) << spec.label();
  }
}

TEST(AneBenchPrograms, EverySeedProgramPassesStrict) {
  for (const std::string& sweep : bench_sweep_names())
    for (const ConvChainSpec& s : seed_sweep(sweep)) {
      const auto findings = mil::check_strict(conv_chain_program(s, false).program);
      for (const auto& f : findings) ADD_FAILURE() << format_finding(f, s.label());
    }
}

double relative_l2(const mil::Tensor& got, const std::vector<float>& want) {
  double d = 0, n = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    d += (got.ptr()[i] - double(want[i])) * (got.ptr()[i] - double(want[i]));
    n += double(want[i]) * want[i];
  }
  return std::sqrt(d / n);
}

// ane-sim against the host reference, within depth · 2^-11 (fp16 storage per layer); and the
// check is sharp: the W8A8 chain's output is far outside that bound of the fp16 chain's reference.
TEST(AneBenchPrograms, SimulatedChainsMatchTheHostReference) {
  for (ChainPrecision p : {ChainPrecision::fp16, ChainPrecision::w8a8}) {
    const ConvChainSpec spec{"int8", 64, 8, 64, 6, p};
    SimExecutor sim;
    const KernelProgram k = conv_chain_program(spec);
    const int h = sim.compile(k);
    mil::Tensor in = mil::Tensor::zeros(k.program.inputs[0].second);
    const std::vector<float> x = conv_chain_input(spec);
    std::copy(x.begin(), x.end(), in.ptr());
    const mil::Tensor& got = sim.evaluate(h, in);
    const double bound = spec.depth * std::ldexp(1.0, -11);
    EXPECT_LT(relative_l2(got, conv_chain_reference(spec, x)), bound) << spec.label();
    // The output keeps its scale: the weights' scale keeps the variance through the chain.
    double sq = 0;
    for (size_t i = 0; i < got.numel(); ++i) sq += double(got.ptr()[i]) * got.ptr()[i];
    EXPECT_NEAR(std::sqrt(sq / got.numel()), 1.0, 0.5) << spec.label();
    if (p == ChainPrecision::w8a8) {
      const ConvChainSpec fp16{spec.sweep, spec.channels, spec.height, spec.width, spec.depth, ChainPrecision::fp16};
      EXPECT_GT(relative_l2(got, conv_chain_reference(fp16, x)), 4 * bound);
    }
  }
}

}  // namespace
}  // namespace anetrain::ane
