// The MIL parser on programs nobody on this project wrote (the seed's generators, rendered in
// ../shared/reference/mil), and its errors on broken text: every one names line and column.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "mil/blob.h"
#include "mil/parser.h"
#include "mil/printer.h"

namespace anetrain::mil {
namespace {

namespace fs = std::filesystem;
const fs::path kSeedMil = fs::path(ANETRAIN_ASSETS) / ".." / "reference" / "mil";

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<fs::path> seed_programs() {
  std::vector<fs::path> out;
  for (const auto& dir : fs::directory_iterator(kSeedMil))
    if (dir.is_directory())
      for (const auto& f : fs::directory_iterator(dir.path()))
        if (f.path().extension() == ".mil") out.push_back(f.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(MilParser, EverySeedProgramParsesAndReprintsByteForByte) {
  auto programs = seed_programs();
  ASSERT_EQ(programs.size(), 46u) << "expected 4 dynamic configs x 10 kernels + 6 static kernels in " << kSeedMil;
  for (const fs::path& p : programs) {
    std::string text = slurp(p);
    Program prog = parse_program(text, p.string());
    EXPECT_EQ(print_program(prog), text) << p;
    EXPECT_NO_THROW(check_blob_references(prog, p.parent_path().string())) << p;
    EXPECT_EQ(prog.inputs.size(), 1u) << p;
    EXPECT_EQ(prog.outputs.size(), 1u) << p;
  }
}

TEST(MilParser, KeepsVariableNamesLabelsAndLiteralSpellings) {
  Program p = parse_program(slurp(kSeedMil / "tiny-gqa" / "sdpaFwd.mil"));
  const Op* q4 = p.producer("q4");
  ASSERT_NE(q4, nullptr);
  EXPECT_EQ(q4->label(), "rq");  // the seed labels differ from variable names
  const Op* scv = p.producer("scv");
  EXPECT_EQ(scv->attr("val")->value.text, "0.250000");
  EXPECT_DOUBLE_EQ(scv->attr("val")->value.values.at(0), 0.25);
  const Op* mask = p.producer("cm");
  EXPECT_EQ(mask->attr("val")->value.kind, Literal::Kind::blobfile);
  EXPECT_EQ(mask->attr("val")->value.blob_path, "@model_path/weights/mask.bin");
  EXPECT_EQ(mask->attr("val")->value.blob_offset, 64u);
  EXPECT_EQ(p.producer("out")->type, Type::of(ElemType::fp16, {1, 256, 1, 32}));
}

std::string parse_error(const std::string& text) {
  try {
    parse_program(text, "t.mil");
  } catch (const MilError& e) {
    return e.what();
  }
  return "";
}

std::string program_with(const std::string& body, const std::string& input = "tensor<fp16, [1, 4, 1, 8]> x",
                         const std::string& out = "y") {
  return "program(1.3)\n{\n    func main<ios18>(" + input + ") {\n" + body + "    } -> (" + out + ");\n}\n";
}

TEST(MilParser, ErrorsGiveLineAndColumn) {
  // Missing semicolon: reported where the next statement begins.
  std::string e = parse_error(program_with("        tensor<fp16, [1,4,1,8]> y = sigmoid(x=x)[name=string(\"y\")]\n"));
  EXPECT_NE(e.find("t.mil:5:5: expected ';'"), std::string::npos) << e;
  e = parse_error(program_with("        tensor<fp16, [1,4,1,8]> y = sigmoidd(x=x)[name=string(\"y\")];\n"));
  EXPECT_NE(e.find("t.mil:4:9: sigmoidd 'y': unknown op"), std::string::npos) << e;
  e = parse_error(program_with("        tensor<fp16, [1,4,1,8]> y = sigmoid(x=z)[name=string(\"y\")];\n"));
  EXPECT_NE(e.find("t.mil:4:9:"), std::string::npos) << e;
  EXPECT_NE(e.find("'z' (for x) is not defined"), std::string::npos) << e;
  e = parse_error(program_with("        tensor<fp16, [1,4,1,9]> y = sigmoid(x=x)[name=string(\"y\")];\n"));
  EXPECT_NE(e.find("declared tensor<fp16, [1,4,1,9]> but it computes tensor<fp16, [1,4,1,8]>"), std::string::npos) << e;
  e = parse_error(program_with("        tensor<fq16, [1,4,1,8]> y = sigmoid(x=x)[name=string(\"y\")];\n"));
  EXPECT_NE(e.find("t.mil:4:16: unknown element type 'fq16'"), std::string::npos) << e;
  e = parse_error(program_with("        tensor<fp16, [1,4,1,8]> y = sigmoid(x=x)[name=string(\"y\")];\n", "tensor<fp16, [1, 4, 1, 8]> x", "w"));
  EXPECT_NE(e.find("output 'w' is never defined"), std::string::npos) << e;
  e = parse_error(program_with("        tensor<fp16, [1,4,1,8]> y = sigmoid(x=x)[name=string(\"y)];\n"));
  EXPECT_NE(e.find("t.mil:4:62: unterminated string"), std::string::npos) << e;
  e = parse_error("program(1.3)\n{\n    func main<ios18>(tensor<fp16, [1, 0, 1, 8]> x) {\n");
  EXPECT_NE(e.find("t.mil:3:39: tensor dimensions must be positive"), std::string::npos) << e;
  e = parse_error(program_with("        tensor<fp16, [1,4,1,8]> y = sigmoid(x=x)[name=string(\"y\")];\n") + "junk");
  EXPECT_NE(e.find("unexpected text after the program"), std::string::npos) << e;
  e = parse_error(program_with("        tensor<int32, [2]> c = const()[name=string(\"c\"), val=tensor<int32, [2]>([1,2,3])];\n"
                               "        tensor<fp16, [1,4,1,8]> y = sigmoid(x=x)[name=string(\"y\")];\n"));
  EXPECT_NE(e.find("t.mil:4:62: literal of type tensor<int32, [2]> holds 3 values"), std::string::npos) << e;
  e = parse_error(program_with("        tensor<fp16, [1,4,1,8]> y = sigmoid(x=x)[name=string(\"y\")];\n"
                               "        tensor<fp16, [1,4,1,8]> y = sigmoid(x=x)[name=string(\"y\")];\n"));
  EXPECT_NE(e.find("t.mil:5:9: 'y' is defined twice"), std::string::npos) << e;
}

TEST(MilParser, ShapeErrorInASeedProgramIsCaught) {
  // Change one declared shape in a real program: the parser refuses it at that statement.
  std::string text = slurp(kSeedMil / "tiny-gqa" / "woFwd.mil");
  size_t at = text.find("tensor<fp16, [1,1,32,64]> mm_yh");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 25, "tensor<fp16, [1,1,32,65]>");
  std::string e = parse_error(text);
  EXPECT_NE(e.find("declared tensor<fp16, [1,1,32,65]>"), std::string::npos) << e;
}

TEST(MilBlobs, BadReferencesNameFileAndOffset) {
  Program p = parse_program(slurp(kSeedMil / "tiny-gqa" / "sdpaFwd.mil"));
  fs::path dir = fs::temp_directory_path() / ("anetrain_blobref_" + std::to_string(::getpid()));
  fs::create_directories(dir / "weights");
  for (const char* f : {"mask.bin", "rope_cos.bin", "rope_sin.bin"})
    fs::copy_file(kSeedMil / "tiny-gqa" / "weights" / f, dir / "weights" / f, fs::copy_options::overwrite_existing);
  EXPECT_NO_THROW(check_blob_references(p, dir.string()));
  {  // corrupt the chunk magic of mask.bin
    std::fstream f(dir / "weights" / "mask.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64);
    f.put(0);
  }
  try {
    check_blob_references(p, dir.string());
    ADD_FAILURE() << "corrupt blob accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mask.bin: at byte 64: chunk header does not start with 0xDEADBEEF"), std::string::npos) << e.what();
  }
  fs::resize_file(dir / "weights" / "rope_cos.bin", 1000);
  fs::remove(dir / "weights" / "mask.bin");
  EXPECT_THROW(check_blob_references(p, dir.string()), Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anetrain::mil
