// `anetrain mil`: the Neural Engine simulator as a tool for people writing ANE programs.
//   mil check PROGRAM.mil [--weights DIR] [--strict]   parse, type-check, report cost and every ANE
//                                                       limit; --strict: only the seed's constructs
//   mil proven-set DIR... [-o FILE]            the table --strict checks against, from seed programs
//   mil run PROGRAM.mil [--weights DIR] --input x=IN.npy -o OUT.npy [--repeat N]
//   (check and run: [--max-bytes N], the most memory ane-sim may hold at once, default 4 GiB;
//   `run` refuses a program past it before reading an input or allocating anything)
// DIR is the folder `@model_path` stands for (default: the program's own folder).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "mil/blob.h"
#include "mil/parser.h"
#include "mil/stats.h"
#include "mil/strict.h"
#include "mil/sim/compiler.h"
#include "mil/fp16.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/npy.h"

namespace anetrain {
namespace {

namespace fs = std::filesystem;

std::string model_dir_for(const std::string& program, const std::string& weights) {
  if (!weights.empty()) return weights;
  fs::path parent = fs::path(program).parent_path();
  return parent.empty() ? "." : parent.string();
}

const char* npy_descr(mil::ElemType e) {
  switch (e) {
    case mil::ElemType::fp16: return "<f2";
    case mil::ElemType::fp32: return "<f4";
    case mil::ElemType::int32: return "<i4";
    case mil::ElemType::int8: return "|i1";
    case mil::ElemType::boolean: return "|b1";
    default: fail(std::string("no .npy dtype for ") + mil::elem_name(e));
  }
}

sim::Tensor tensor_from_npy(const std::string& path, const std::string& name, const mil::Type& want) {
  NpyArray a = read_npy(path);
  if (a.descr != npy_descr(want.elem) || a.shape != want.shape) {
    std::string shape = "(";
    for (size_t i = 0; i < a.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(a.shape[i]);
    fail(path + ": input '" + name + "' must be " + want.str() + " (npy dtype " + npy_descr(want.elem) + "), file holds " +
         a.descr + " " + shape + ")");
  }
  sim::Tensor t = sim::Tensor::zeros(want);
  size_t n = t.numel();
  if (want.elem == mil::ElemType::fp16) {
    mil::fp16_to_fp32(reinterpret_cast<const uint16_t*>(a.data.data()), t.ptr(), n);
  } else if (want.elem == mil::ElemType::fp32) {
    std::memcpy(t.ptr(), a.data.data(), n * 4);
  } else {
    fail(path + ": inputs of type " + want.str() + " are not supported (fp16, fp32)");
  }
  return t;
}

NpyArray npy_from_tensor(const sim::Tensor& t) {
  NpyArray a;
  a.descr = npy_descr(t.type.elem);
  a.shape = t.type.shape;
  a.data.resize(t.numel() * a.elem_size());
  if (t.type.elem == mil::ElemType::fp16) {
    mil::fp32_to_fp16(t.ptr(), reinterpret_cast<uint16_t*>(a.data.data()), t.numel());
  } else if (t.type.elem == mil::ElemType::fp32) {
    std::memcpy(a.data.data(), t.ptr(), t.numel() * 4);
  } else {
    fail(std::string("outputs of type ") + t.type.str() + " are not supported (fp16, fp32)");
  }
  return a;
}

std::string human_bytes(double b) {
  char buf[32];
  if (b >= double(1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ull << 30));
  else if (b >= double(1u << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / (1 << 20));
  else std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024);
  return buf;
}

// Empty when ane-sim's peak fits under max_bytes, else why it does not.
std::string over_memory_limit(const mil::MemoryCost& m, uint64_t max_bytes) {
  if (m.sim_peak_bytes <= double(max_bytes)) return "";
  return "running it in ane-sim needs " + human_bytes(m.sim_peak_bytes) + " at its peak (tensors held as fp32; the largest, '" +
         mil::excerpt(m.largest, 60) + "' " + m.largest_type.str() + ", is " + human_bytes(m.largest_bytes) +
         "), over --max-bytes " + human_bytes(double(max_bytes));
}

const char* when_name(sim::When w) {
  return w == sim::When::compile ? "compile error" : w == sim::When::evaluate ? "evaluate error" : "warning";
}

// The strict findings of a program already read and checked; the count of them.
int report_strict(const std::string& path, const mil::Program& p) {
  MappedFile f(path);
  const std::string text(reinterpret_cast<const char*>(f.data()), f.size());
  const std::vector<mil::StrictFinding> findings = mil::check_strict(p, text);
  for (const mil::StrictFinding& finding : findings) std::printf("  strict %s\n", mil::format_finding(finding, path).c_str());
  return int(findings.size());
}

int check(const std::string& path, const std::string& weights, bool strict, uint64_t max_bytes) {
  mil::Program p = mil::parse_program_file(path);
  std::string dir = model_dir_for(path, weights);
  mil::check_blob_references(p, dir);
  mil::ProgramStats s = mil::program_stats(p);
  std::printf("%s: %d ops, %d consts (function %s<%s>)\n", path.c_str(), s.ops, s.consts, p.function.c_str(), p.opset.c_str());
  std::string kinds;
  for (const auto& [k, n] : s.by_kind) kinds += (kinds.empty() ? "" : ", ") + k + " " + std::to_string(n);
  std::printf("  ops: %s\n", kinds.c_str());
  std::printf("  FLOPs: %.4g matrix (matmul/conv) + %.4g elementwise\n", s.matrix_flops, s.other_flops);
  for (const auto& [name, t] : p.inputs) std::printf("  input  %s %s\n", name.c_str(), t.str().c_str());
  const mil::ProducerIndex producer(p);
  for (const auto& o : p.outputs) std::printf("  output %s %s\n", o.c_str(), producer(o) ? producer(o)->type.str().c_str() : "?");
  std::printf("  I/O: %s in, %s out; weights in blobs: %s\n", human_bytes(double(s.input_bytes)).c_str(),
              human_bytes(double(s.output_bytes)).c_str(), human_bytes(double(s.blob_bytes)).c_str());
  const mil::MemoryCost m = mil::memory_cost(p);
  std::printf("  memory: %s of computed values; ane-sim peak %s (fp32; largest '%s' %s), --max-bytes %s\n",
              human_bytes(m.value_bytes).c_str(), human_bytes(m.sim_peak_bytes).c_str(), mil::excerpt(m.largest, 60).c_str(),
              m.largest_type.str().c_str(), human_bytes(double(max_bytes)).c_str());
  int errors = 0;
  if (const std::string why = over_memory_limit(m, max_bytes); !why.empty()) {
    std::printf("  run error [max-bytes]: %s\n", why.c_str());
    errors++;
  }
  for (const sim::LimitViolation& v : sim::check_ane_limits(p)) {
    std::printf("  %s [%s]: %s (source: %s)\n", when_name(v.when), v.limit.c_str(), v.message.c_str(), v.source.c_str());
    errors += v.when != sim::When::warning;
  }
  const int strict_findings = strict ? report_strict(path, p) : 0;
  if (errors) std::printf("%s: violates %d ANE limit%s\n", path.c_str(), errors, errors == 1 ? "" : "s");
  if (strict_findings)
    std::printf("%s: %d strict finding%s (see docs/ane-sim.md, \"Strict checking\")\n", path.c_str(), strict_findings,
                strict_findings == 1 ? "" : "s");
  if (errors || strict_findings) return 1;
  std::printf("%s: ok%s\n", path.c_str(), strict ? " (strict)" : "");
  return 0;
}

int run_program(const std::string& path, const std::string& weights, const std::vector<std::string>& inputs,
                const std::vector<std::string>& outputs, int repeat, uint64_t max_bytes) {
  mil::Program p = mil::parse_program_file(path);
  // Before any input is read or weight loaded: what the evaluation would hold at its peak.
  if (const std::string why = over_memory_limit(mil::memory_cost(p), max_bytes); !why.empty())
    fail(path + ": " + why + "; pass a larger --max-bytes to run it anyway");
  std::map<std::string, std::string> given;
  for (const std::string& spec : inputs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) fail("--input '" + spec + "': expected NAME=FILE.npy");
    if (!given.emplace(spec.substr(0, eq), spec.substr(eq + 1)).second) fail("--input " + spec.substr(0, eq) + " given twice");
  }
  std::vector<sim::Tensor> in;
  for (const auto& [name, type] : p.inputs) {
    auto it = given.find(name);
    if (it == given.end()) fail(path + ": input '" + name + "' " + type.str() + " needs --input " + name + "=FILE.npy");
    in.push_back(tensor_from_npy(it->second, name, type));
    given.erase(it);
  }
  if (!given.empty()) fail(path + ": the program has no input named '" + given.begin()->first + "'");
  std::vector<std::string> read = {path};
  for (const std::string& spec : inputs) read.push_back(spec.substr(spec.find('=') + 1));
  refuse_output_over_input(outputs, read);
  if (outputs.size() != p.outputs.size())
    fail(path + ": the program has " + std::to_string(p.outputs.size()) + " output(s); give one -o FILE.npy for each");
  auto model = sim::Compiler::process().compile(p, model_dir_for(path, weights));
  for (const std::string& w : model->warnings()) std::fprintf(stderr, "anetrain: warning: %s\n", w.c_str());
  std::vector<sim::Tensor> out;
  double best = 1e30;
  for (int i = 0; i < std::max(repeat, 1); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    out = model->evaluate(in);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  for (size_t i = 0; i < out.size(); ++i) write_npy(outputs[i], npy_from_tensor(out[i]));
  if (repeat > 1) {
    mil::ProgramStats s = mil::program_stats(p);
    std::fprintf(stderr, "%s: best of %d evaluations %.2f ms (%.1f GFLOP/s on matrix products)\n", path.c_str(), repeat,
                 best * 1e3, s.matrix_flops / best / 1e9);
  }
  return 0;
}

}  // namespace

void add_mil_command(CLI::App& app, Command& run) {
  struct Options {
    std::string program, weights;
    std::vector<std::string> inputs, outputs;
    int repeat = 1;
    uint64_t max_bytes = mil::kDefaultMaxBytes;
    bool strict = false;
    std::vector<std::string> seed_roots;
    std::string table_out;
  };
  const auto o = std::make_shared<Options>();
  auto* mil = app.add_subcommand("mil", "Check and run Neural Engine MIL programs in the ane-sim simulator");
  mil->require_subcommand(1);
  const std::string max_bytes_help = "Most memory ane-sim may hold at once (bytes, or with a unit: 512MiB, 8GiB)";

  auto* chk = mil->add_subcommand("check", "Parse and type-check a program; print its cost and every ANE limit it violates");
  chk->add_option("program", o->program, "MIL text file")->required();
  chk->add_option("--weights", o->weights, "Folder that @model_path stands for (default: the program's folder)");
  chk->add_flag("--strict", o->strict, "Also require every statement to be a construct of the seed's programs, inside the "
                 "hardware's known limits (docs/ane-sim.md)");
  chk->add_option("--max-bytes", o->max_bytes, max_bytes_help)->transform(CLI::AsSizeValue(false))->capture_default_str();
  chk->callback([&run, o] { run = [o] { return check(o->program, o->weights, o->strict, o->max_bytes); }; });

  auto* ps = mil->add_subcommand("proven-set", "Write the table of constructs --strict accepts, from the seed's programs");
  ps->add_option("roots", o->seed_roots, "Folders of seed .mil programs (read recursively)")->required();
  ps->add_option("-o,--output", o->table_out, "Write the JSON table here (default: standard output)");
  ps->callback([&run, o] {
    run = [o] {
      const std::string json = mil::ProvenSet::from_folders(o->seed_roots).to_json().dump(1) + "\n";
      if (o->table_out.empty()) std::fwrite(json.data(), 1, json.size(), stdout);
      else write_file_atomic(o->table_out, json.data(), json.size());
      return 0;
    };
  });

  auto* r = mil->add_subcommand("run", "Run a program in ane-sim with fp16 semantics");
  r->add_option("program", o->program, "MIL text file")->required();
  r->add_option("--weights", o->weights, "Folder that @model_path stands for (default: the program's folder)");
  r->add_option("--input", o->inputs, "NAME=FILE.npy for each function input, in its declared dtype and shape")->required();
  r->add_option("-o,--output", o->outputs, "FILE.npy for each output, in order")->required();
  r->add_option("--repeat", o->repeat, "Evaluate N times and report the best time")->capture_default_str()->check(CLI::PositiveNumber);
  r->add_option("--max-bytes", o->max_bytes, max_bytes_help)->transform(CLI::AsSizeValue(false))->capture_default_str();
  r->callback([&run, o] { run = [o] { return run_program(o->program, o->weights, o->inputs, o->outputs, o->repeat, o->max_bytes); }; });
}

}  // namespace anetrain
