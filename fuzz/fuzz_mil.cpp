// parse_program (MIL text) and everything that reads a parsed program without its weights:
// the printer (print → parse → print must be the identity), the ANE limit checks, the cost
// statistics, and — for small programs without BLOBFILE constants — one ane-sim evaluation.
#include <cstdint>
#include <string>

#include "mil/parser.h"
#include "mil/printer.h"
#include "mil/stats.h"
#include "mil/sim/compiler.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace anetrain;
  std::string text(reinterpret_cast<const char*>(data), size);
  mil::Program p;
  try {
    p = mil::parse_program(text, "fuzz.mil");
  } catch (const Error&) {
    return 0;
  }
  std::string once = mil::print_program(p);
  if (mil::print_program(mil::parse_program(once, "reprinted.mil")) != once) __builtin_trap();
  sim::check_ane_limits(p);
  mil::program_stats(p);
  int64_t elements = 0;
  for (const auto& [name, t] : p.inputs) elements += t.numel();
  for (const mil::Op& op : p.ops) {
    elements += op.type.numel();
    for (const mil::Attr& a : op.attrs)
      if (a.value.kind == mil::Literal::Kind::blobfile) return 0;
  }
  if (elements > (1 << 16)) return 0;
  try {
    sim::Compiler rt;
    auto model = rt.compile(p, ".");
    std::vector<sim::Tensor> in;
    for (const auto& [name, t] : p.inputs) in.push_back(sim::Tensor::zeros(t));
    model->evaluate(in);
  } catch (const Error&) {
  }
  return 0;
}
