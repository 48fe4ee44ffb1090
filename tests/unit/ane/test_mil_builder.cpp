// The typed MIL builder: exact text, round trips through the parser, and a clear error at build
// time for every shape or type mistake.
#include <gtest/gtest.h>

#include "mil/builder.h"
#include "mil/parser.h"
#include "mil/printer.h"

namespace anetrain::mil {
namespace {


// y = Mᵀx with M staged beside x in one input: the seed's "dynamic matmul", built by us.
Program dynamic_matmul(int ic, int oc, int seq) {
  Builder b;
  Var in = b.input("x", Type::fp16({1, ic, 1, seq + oc}));
  Var act = b.slice(in, {0, 0, 0, 0}, {1, ic, 1, seq}, "act");
  Var w = b.slice(in, {0, 0, 0, seq}, {1, ic, 1, oc}, "w");
  Var xt = b.swap_last_two(b.reshape(act, {1, 1, ic, seq}, "act2"), "xt");
  Var y = b.matmul(xt, b.reshape(w, {1, 1, ic, oc}, "w2"), false, false, "y");
  Var out = b.reshape(b.swap_last_two(y, "yt"), {1, oc, 1, seq}, "out");
  return b.finish({out});
}

const char* kDynamicMatmulGolden =
    "program(1.3)\n"
    "[buildInfo = dict<string, string>({{\"coremlc-component-MIL\", \"3510.2.1\"}, {\"coremlc-version\", \"3505.4.1\"}, "
    "{\"coremltools-component-milinternal\", \"\"}, {\"coremltools-version\", \"9.0\"}})]\n"
    "{\n"
    "    func main<ios18>(tensor<fp16, [1, 4, 1, 5]> x) {\n"
    "        tensor<int32, [4]> c_0 = const()[name=string(\"c_0\"), val=tensor<int32, [4]>([0,0,0,0])];\n"
    "        tensor<int32, [4]> c_1 = const()[name=string(\"c_1\"), val=tensor<int32, [4]>([1,4,1,2])];\n"
    "        tensor<fp16, [1,4,1,2]> act = slice_by_size(x=x,begin=c_0,size=c_1)[name=string(\"act\")];\n"
    "        tensor<int32, [4]> c_2 = const()[name=string(\"c_2\"), val=tensor<int32, [4]>([0,0,0,2])];\n"
    "        tensor<int32, [4]> c_3 = const()[name=string(\"c_3\"), val=tensor<int32, [4]>([1,4,1,3])];\n"
    "        tensor<fp16, [1,4,1,3]> w = slice_by_size(x=x,begin=c_2,size=c_3)[name=string(\"w\")];\n"
    "        tensor<int32, [4]> c_4 = const()[name=string(\"c_4\"), val=tensor<int32, [4]>([1,1,4,2])];\n"
    "        tensor<fp16, [1,1,4,2]> act2 = reshape(shape=c_4,x=act)[name=string(\"act2\")];\n"
    "        tensor<int32, [4]> c_5 = const()[name=string(\"c_5\"), val=tensor<int32, [4]>([0,1,3,2])];\n"
    "        tensor<fp16, [1,1,2,4]> xt = transpose(perm=c_5,x=act2)[name=string(\"xt\")];\n"
    "        tensor<int32, [4]> c_6 = const()[name=string(\"c_6\"), val=tensor<int32, [4]>([1,1,4,3])];\n"
    "        tensor<fp16, [1,1,4,3]> w2 = reshape(shape=c_6,x=w)[name=string(\"w2\")];\n"
    "        bool c_7 = const()[name=string(\"c_7\"), val=bool(false)];\n"
    "        tensor<fp16, [1,1,2,3]> y = matmul(transpose_x=c_7,transpose_y=c_7,x=xt,y=w2)[name=string(\"y\")];\n"
    "        tensor<fp16, [1,1,3,2]> yt = transpose(perm=c_5,x=y)[name=string(\"yt\")];\n"
    "        tensor<int32, [4]> c_8 = const()[name=string(\"c_8\"), val=tensor<int32, [4]>([1,3,1,2])];\n"
    "        tensor<fp16, [1,3,1,2]> out = reshape(shape=c_8,x=yt)[name=string(\"out\")];\n"
    "    } -> (out);\n"
    "}\n";

TEST(MilBuilder, DynamicMatmulGoldenText) {
  EXPECT_EQ(print_program(dynamic_matmul(4, 3, 2)), kDynamicMatmulGolden);
}

TEST(MilBuilder, ConstsAreSharedAndLiteralsSpelledExactly) {
  Builder b;
  Var x = b.input("x", Type::fp16({1, 8, 1, 4}));
  Var s = b.mul(x, 0.125, "scaled");
  Var r = b.add(s, 1e-5, "eps");
  Var p = b.pow(r, -0.5, "rs");
  std::string text = print_program(b.finish({p}));
  EXPECT_NE(text.find("fp16 c_0 = const()[name=string(\"c_0\"), val=fp16(0.125)];"), std::string::npos) << text;
  // 1e-5 is not an fp16 number; its shortest spelling that rounds to the same fp16 is printed.
  EXPECT_NE(text.find("val=fp16(1e-05)"), std::string::npos) << text;
  EXPECT_NE(text.find("val=fp16(-0.5)"), std::string::npos) << text;
}

// One program using every op the builder offers: build → print → parse → print is byte-identical.
Program every_op() {
  Builder b;
  Var x = b.input("x", Type::fp16({1, 8, 1, 16}));
  Var sq = b.mul(x, x, "sq");
  Var ss = b.reduce_sum(sq, {1}, true, "ss");
  Var rr = b.pow(b.add(b.mul(ss, 0.125, "ms"), 1e-5, "mse"), -0.5, "rrms");
  Var xn = b.mul(x, rr, "xn");
  Var w = b.blob("w", Type::fp16({8, 8, 1, 1}), "@model_path/weights/w.bin", 64);
  Var h = b.conv(xn, w, 1, "h");
  Var g = b.mul(h, b.sigmoid(h, "sg"), "silu");
  Var heads = b.swap_last_two(b.reshape(g, {1, 2, 4, 16}, "heads"), "q");
  Var sc = b.softmax(b.matmul(heads, heads, false, true, "scores"), -1, "p");
  Var pv = b.matmul(sc, heads, false, false, "pv");
  Var att = b.sdpa(heads, heads, heads, "att");
  Var d = b.sub(pv, att, "d");
  Var back = b.reshape(b.swap_last_two(d, "dt"), {1, 8, 1, 16}, "back");
  Var q8 = b.quantize(back, 0.125, "q8");
  Var dq = b.dequantize(q8, 0.125, "dq");
  Var w8 = b.affine_dequantize("w8", Type::of(ElemType::int8, {8, 8, 1, 1}), "@model_path/weights/w8.bin", 64, 0.125);
  Var y = b.conv(dq, w8, 1, "y");
  Var f32 = b.cast(y, ElemType::fp32, "y32");
  Var f16b = b.cast(f32, ElemType::fp16, "y16");
  Var part = b.slice(f16b, {0, 0, 0, 0}, {1, 4, 1, 16}, "part");
  Var out = b.concat({part, y, part}, 1, "out");
  Var t = b.tensor("bias", Type::fp16({1, 16, 1, 1}), std::vector<double>(16, 0.5));
  return b.finish({b.add(out, t, "final")});
}

TEST(MilBuilder, EveryOpRoundTripsByteForByte) {
  std::string once = print_program(every_op());
  Program parsed = parse_program(once, "every_op.mil");
  EXPECT_EQ(print_program(parsed), once);
  EXPECT_EQ(parsed.ops.size(), every_op().ops.size());
  EXPECT_EQ(parsed.producer("final")->type, Type::of(ElemType::fp16, {1, 16, 1, 16}));
}

// Every shape mistake fails when the op is added, naming the op and the shapes involved.
template <typename F>
std::string build_error(F&& f) {
  try {
    f();
  } catch (const MilError& e) {
    return e.what();
  }
  return "";
}

TEST(MilBuilder, ShapeErrorsNameTheOpAndBothShapes) {
  Builder b;
  Var x = b.input("x", Type::fp16({1, 4, 32, 16}));
  Var y = b.input("y", Type::fp16({1, 4, 15, 32}));
  std::string e = build_error([&] { b.matmul(x, y, false, false, "mm1"); });
  EXPECT_NE(e.find("matmul 'mm1'"), std::string::npos) << e;
  EXPECT_NE(e.find("[1,4,32,16]"), std::string::npos) << e;
  EXPECT_NE(e.find("[1,4,15,32]"), std::string::npos) << e;
  EXPECT_NE(e.find("16 and 15"), std::string::npos) << e;
  // The same pair is fine once y is transposed.
  EXPECT_NO_THROW(b.matmul(y, x, false, false, "mm2"));  // [15,32]·[32,16]

  e = build_error([&] { b.reshape(x, {1, 4, 16, 33}, "r"); });
  EXPECT_NE(e.find("reshape 'r'"), std::string::npos) << e;
  EXPECT_NE(e.find("2048 elements"), std::string::npos) << e;
  e = build_error([&] { b.add(x, y, "a"); });
  EXPECT_NE(e.find("add 'a'"), std::string::npos) << e;
  EXPECT_NE(e.find("do not broadcast"), std::string::npos) << e;
  e = build_error([&] { b.concat({x, y}, 1, "cat"); });
  EXPECT_NE(e.find("concat 'cat'"), std::string::npos) << e;
  e = build_error([&] { b.slice(x, {0, 0, 0, 8}, {1, 4, 32, 9}, "s"); });
  EXPECT_NE(e.find("slice_by_size 's'"), std::string::npos) << e;
  EXPECT_NE(e.find("outside x"), std::string::npos) << e;
  e = build_error([&] { b.transpose(x, {0, 1, 1, 2}, "t"); });
  EXPECT_NE(e.find("not a permutation"), std::string::npos) << e;
  e = build_error([&] { b.reduce_sum(x, {4}, true, "rs"); });
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
  e = build_error([&] { b.softmax(x, 7, "sm"); });
  EXPECT_NE(e.find("softmax 'sm'"), std::string::npos) << e;
  Var w = b.blob("w", Type::fp16({8, 5, 1, 1}), "@model_path/weights/w.bin", 64);
  e = build_error([&] { b.conv(x, w, 1, "cv"); });
  EXPECT_NE(e.find("conv 'cv'"), std::string::npos) << e;
  EXPECT_NE(e.find("expects 5"), std::string::npos) << e;
  e = build_error([&] { b.mul(x, b.cast(x, ElemType::fp32), "mx"); });
  EXPECT_NE(e.find("x is fp16 but y is fp32"), std::string::npos) << e;
  e = build_error([&] { b.add(x, x, "mm2"); });
  EXPECT_NE(e.find("already taken"), std::string::npos) << e;
  e = build_error([&] { b.input("late", Type::fp16({1, 1, 1, 1})); });
  EXPECT_NE(e.find("after the first op"), std::string::npos) << e;
}

TEST(MilBuilder, FinishRejectsForeignOutputsAndTwice) {
  Builder b;
  Var x = b.input("x", Type::fp16({1, 2, 1, 2}));
  EXPECT_THROW(b.finish({Var{"ghost", x.type}}), MilError);
  Builder c;
  Var y = c.sigmoid(c.input("x", Type::fp16({1, 2, 1, 2})));
  c.finish({y});
  EXPECT_THROW(c.finish({y}), MilError);
}

}  // namespace
}  // namespace anetrain::mil
