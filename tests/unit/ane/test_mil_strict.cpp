// `mil check --strict` rule by rule: a small hand-made program that breaks exactly one rule is
// reported under that rule alone, at the right line and variable, with the nearest seed
// statement; the same program without the fault has no finding at all.
#include <gtest/gtest.h>

#include <set>

#include "mil/builder.h"
#include "mil/parser.h"
#include "mil/printer.h"
#include "mil/strict.h"

namespace anetrain::mil {
namespace {

// A seed-style program: every argument a named const, one input, one output. The body's first
// line is line 5 of the text.
std::string program(const std::string& body, const std::string& out = "y",
                    const std::string& input = "tensor<fp16, [1, 64, 1, 64]> x") {
  return "program(1.3)\n[buildInfo = dict<string, string>({{\"coremlc-component-MIL\", \"3510.2.1\"}})]\n{\n"
         "    func main<ios18>(" + input + ") {\n" + body + "    } -> (" + out + ");\n}\n";
}

const std::string kHalf = "        fp16 sc = const()[name=string(\"sc\"), val=fp16(0.5)];\n";
const std::string kPerm = "        tensor<int32, [4]> pm = const()[name=string(\"pm\"), val=tensor<int32, [4]>([0,1,3,2])];\n";

std::vector<StrictFinding> strict(const std::string& text) { return check_strict(parse_program(text, "t.mil"), text); }

std::set<std::string> rules(const std::vector<StrictFinding>& f) {
  std::set<std::string> r;
  for (const auto& x : f) r.insert(x.rule);
  return r;
}

std::string all(const std::vector<StrictFinding>& f) {
  std::string s;
  for (const auto& x : f) s += format_finding(x, "t.mil") + "\n";
  return s;
}

TEST(MilStrict, ASeedStyleProgramPasses) {
  const auto f = strict(program(kHalf + "        tensor<fp16, [1,64,1,64]> y = mul(x=x,y=sc)[name=string(\"y\")];\n"));
  EXPECT_TRUE(f.empty()) << all(f);
}

TEST(MilStrict, ConstructOutsideTheProvenSet) {
  // The seed subtracts only with a broadcast column or from a scalar, never two full tensors.
  auto f = strict(program("        tensor<fp16, [1,64,1,64]> y = sub(x=x,y=x)[name=string(\"y\")];\n"));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kConstruct}) << all(f);
  EXPECT_EQ(f[0].line, 5);
  EXPECT_EQ(f[0].variable, "y");
  EXPECT_NE(f[0].message.find("sub(x:r4, y:r4) -> fp16 r4"), std::string::npos) << f[0].message;
  EXPECT_NE(f[0].nearest.find("sub(x:r4, y:r4 broadcast@3)"), std::string::npos) << f[0].nearest;
  EXPECT_NE(f[0].nearest.find("sdpaBwd2.mil"), std::string::npos) << f[0].nearest;

  // A perm the seed never used; and an op no seed program uses at all.
  f = strict(program("        tensor<int32, [4]> pm = const()[name=string(\"pm\"), val=tensor<int32, [4]>([0,2,1,3])];\n"
                     "        tensor<fp16, [1,1,64,64]> y = transpose(perm=pm,x=x)[name=string(\"y\")];\n"));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kConstruct}) << all(f);
  EXPECT_NE(f[0].nearest.find("perm=[0,1,3,2]"), std::string::npos) << f[0].nearest;
  f = strict(program("        string dt = const()[name=string(\"dt\"), val=string(\"fp32\")];\n"
                     "        tensor<fp32, [1,64,1,64]> y = cast(dtype=dt,x=x)[name=string(\"y\")];\n"));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kConstruct}) << all(f);
  EXPECT_EQ(f[0].nearest, "no seed program uses cast");
}

TEST(MilStrict, BatchDimensionOtherThanOne) {
  const auto f = strict(program(
      "        tensor<int32, [4]> s2 = const()[name=string(\"s2\"), val=tensor<int32, [4]>([2,32,1,64])];\n"
      "        tensor<int32, [4]> s1 = const()[name=string(\"s1\"), val=tensor<int32, [4]>([1,64,1,64])];\n"
      "        tensor<fp16, [2,32,1,64]> two = reshape(shape=s2,x=x)[name=string(\"two\")];\n"
      "        tensor<fp16, [1,64,1,64]> y = reshape(shape=s1,x=two)[name=string(\"y\")];\n"));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kBatch}) << all(f);
  EXPECT_EQ(f[0].line, 7);
  EXPECT_EQ(f[0].variable, "two");
}

TEST(MilStrict, ExtentsPastTheHardwareLimits) {
  const std::string slice = "        tensor<int32, [4]> b0 = const()[name=string(\"b0\"), val=tensor<int32, [4]>([0,0,0,0])];\n"
                            "        tensor<int32, [4]> sz = const()[name=string(\"sz\"), val=tensor<int32, [4]>([1,32,1,32])];\n"
                            "        tensor<fp16, [1,32,1,32]> y = slice_by_size(x=x,begin=b0,size=sz)[name=string(\"y\")];\n";
  // W = 16416 > 16384 (still a whole number of 64-byte rows).
  auto f = strict(program(slice, "y", "tensor<fp16, [1, 32, 1, 16416]> x"));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kExtent}) << all(f);
  EXPECT_EQ(f[0].line, 4);  // the input, on the signature's line
  EXPECT_EQ(f[0].variable, "x");
  EXPECT_NE(f[0].message.find("dim 3 = 16416 > 16384"), std::string::npos) << f[0].message;
  // C may reach 65536; one more is refused.
  f = strict(program(slice, "y", "tensor<fp16, [1, 65536, 1, 32]> x"));
  EXPECT_TRUE(f.empty()) << all(f);
  f = strict(program(slice, "y", "tensor<fp16, [1, 65537, 1, 32]> x"));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kExtent}) << all(f);
}

TEST(MilStrict, InputAndOutputRowsOfWholeSixtyFourBytes) {
  // 48 fp16 columns are 96 bytes: both the input and the output row are off.
  const auto f = strict(program(kHalf + "        tensor<fp16, [1,64,1,48]> y = mul(x=x,y=sc)[name=string(\"y\")];\n", "y",
                                "tensor<fp16, [1, 64, 1, 48]> x"));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kIoRowBytes}) << all(f);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].variable, "x");
  EXPECT_EQ(f[1].variable, "y");
  EXPECT_EQ(f[1].line, 6);
  EXPECT_NE(f[0].message.find("96 bytes"), std::string::npos) << f[0].message;
}

TEST(MilStrict, SoftmaxOverANonPowerOfTwoLength) {
  const std::string body =
      "        tensor<int32, [4]> r = const()[name=string(\"r\"), val=tensor<int32, [4]>([1,1,64,48])];\n"
      "        tensor<int32, [4]> back = const()[name=string(\"back\"), val=tensor<int32, [4]>([1,48,1,64])];\n"
      "        int32 ax = const()[name=string(\"ax\"), val=int32(-1)];\n"
      "        tensor<fp16, [1,1,64,48]> s = reshape(shape=r,x=x)[name=string(\"s\")];\n"
      "        tensor<fp16, [1,1,64,48]> p = softmax(axis=ax,x=s)[name=string(\"p\")];\n"
      "        tensor<fp16, [1,48,1,64]> y = reshape(shape=back,x=p)[name=string(\"y\")];\n";
  const auto f = strict(program(body, "y", "tensor<fp16, [1, 48, 1, 64]> x"));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kSoftmaxLength}) << all(f);
  EXPECT_EQ(f[0].variable, "p");
  EXPECT_EQ(f[0].line, 9);
  EXPECT_NE(f[0].message.find("length 48"), std::string::npos) << f[0].message;
}

TEST(MilStrict, MatmulInnerDimensionNotAMultipleOf32) {
  const std::string body =
      "        tensor<int32, [4]> r = const()[name=string(\"r\"), val=tensor<int32, [4]>([1,1,48,64])];\n" + kPerm +
      "        tensor<int32, [4]> back = const()[name=string(\"back\"), val=tensor<int32, [4]>([1,64,1,64])];\n"
      "        bool bF = const()[name=string(\"bF\"), val=bool(false)];\n"
      "        tensor<fp16, [1,1,48,64]> a = reshape(shape=r,x=x)[name=string(\"a\")];\n"
      "        tensor<fp16, [1,1,64,48]> at = transpose(perm=pm,x=a)[name=string(\"at\")];\n"
      "        tensor<fp16, [1,1,64,64]> m = matmul(transpose_x=bF,transpose_y=bF,x=at,y=a)[name=string(\"m\")];\n"
      "        tensor<fp16, [1,64,1,64]> y = reshape(shape=back,x=m)[name=string(\"y\")];\n";
  const auto f = strict(program(body, "y", "tensor<fp16, [1, 48, 1, 64]> x"));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kMatmulInner}) << all(f);
  EXPECT_EQ(f[0].variable, "m");
  EXPECT_NE(f[0].message.find("contracts over 48"), std::string::npos) << f[0].message;
}

TEST(MilStrict, FloatLiteralsInExponentNotationOrSubnormal) {
  auto with_scale = [](const std::string& literal) {
    return program("        fp16 sc = const()[name=string(\"sc\"), val=" + literal + "];\n"
                   "        tensor<fp16, [1,64,1,64]> y = mul(x=x,y=sc)[name=string(\"y\")];\n");
  };
  auto f = strict(with_scale("fp16(2e-01)"));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kFloatLiteral}) << all(f);
  EXPECT_EQ(f[0].variable, "sc");
  EXPECT_NE(f[0].message.find("exponent notation"), std::string::npos) << f[0].message;
  // 3e-5 is below fp16's smallest normal, 2^-14 ≈ 6.1e-5, however it is spelt.
  f = strict(with_scale("fp16(0.00003)"));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kFloatLiteral}) << all(f);
  EXPECT_NE(f[0].message.find("subnormal"), std::string::npos) << f[0].message;
  EXPECT_TRUE(strict(with_scale("fp16(0.0001)")).empty());
}

TEST(MilStrict, VariableNamedAfterAnOp) {
  auto f = strict(program(kHalf + "        tensor<fp16, [1,64,1,64]> mul = mul(x=x,y=sc)[name=string(\"y\")];\n", "mul"));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kOpNamedVariable}) << all(f);
  EXPECT_EQ(f[0].variable, "mul");
  EXPECT_EQ(f[0].line, 6);
  // Another MIL op's name is fine: the seed's ffnFused names a variable `silu` and compiled.
  EXPECT_TRUE(strict(program(kHalf + "        tensor<fp16, [1,64,1,64]> silu = mul(x=x,y=sc)[name=string(\"silu\")];\n", "silu")).empty());
}

TEST(MilStrict, ConcatOfMoreValuesThanAnySeedConcat) {
  auto concat_of = [](int n) {
    std::string values;
    for (int i = 0; i < n; ++i) values += (i ? "," : "") + std::string("x");
    return program("        int32 ax = const()[name=string(\"ax\"), val=int32(1)];\n"
                   "        bool il = const()[name=string(\"il\"), val=bool(false)];\n"
                   "        tensor<fp16, [1," + std::to_string(64 * n) + ",1,64]> y = concat(axis=ax,interleave=il,values=(" +
                   values + "))[name=string(\"y\")];\n");
  };
  const int most = ProvenSet::builtin().max_concat_arity;
  ASSERT_EQ(most, 6) << "the static fwdAttn joins six taps (o, q, k, v, attn, xn)";
  EXPECT_TRUE(strict(concat_of(most)).empty());
  const auto f = strict(concat_of(most + 1));
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kConcatArity}) << all(f);
  EXPECT_NE(f[0].message.find("concat of 7 values"), std::string::npos) << f[0].message;
}

TEST(MilStrict, BuiltProgramsAreLocatedInTheirPrintedText) {
  // A built program carries no line numbers; the finding points into its printed text.
  Builder b;
  Var x = b.input("x", Type::fp16({1, 64, 1, 64}));
  Var y = b.mul(b.mul(x, 0.5, "mul"), 0.25, "y");
  const Program p = b.finish({y});
  const std::string text = print_program(p);
  const auto f = check_strict(p);
  ASSERT_EQ(rules(f), std::set<std::string>{strict_rule::kOpNamedVariable}) << all(f);
  EXPECT_EQ(f[0].variable, "mul");
  const size_t at = text.find(" mul = mul(");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_EQ(f[0].line, 1 + int(std::count(text.begin(), text.begin() + long(at), '\n')));
  EXPECT_THROW(check_strict(p, program(kHalf + "        tensor<fp16, [1,64,1,64]> y = mul(x=x,y=sc)[name=string(\"y\")];\n")),
               MilError);
}

}  // namespace
}  // namespace anetrain::mil
