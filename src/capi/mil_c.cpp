// The C API's MIL programs (include/anetrain.h): a program file and its weight blobs become the
// same KernelProgram the engine's backends hand to an ane::Executor, so a C caller runs exactly
// what `--backend ane-sim` / `ane-fake` / `ane` run — the seed bridge's role, behind a handle.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>

#include "anetrain.h"
#include "backends/ane/make_executor.h"
#include "capi/guard.h"
#include "core/error.h"
#include "mil/blob.h"
#include "mil/fp16.h"
#include "mil/parser.h"

struct anetrain_mil {
  std::string path;
  std::unique_ptr<anetrain::ane::Executor> executor;
  int program = -1;
  anetrain::mil::Type in_type, out_type;
  anetrain::mil::Tensor input;  // reused: evaluate() takes the program's input tensor
};

namespace {

using namespace anetrain;
using namespace anetrain::capi;
namespace fs = std::filesystem;

Registry<anetrain_mil> g_mils;
// Both runtimes count compiles per process in plain integers (the hardware's ~119 budget); two
// host threads compiling at once must not race on them.
std::mutex g_compile_mu;

// The executor named `backend`, its refusals given the C API's statuses.
std::unique_ptr<ane::Executor> executor_for(const std::string& backend) {
  try {
    return ane::make_executor(backend);
  } catch (const ane::ExecutorNotBuilt& e) {
    refuse(ANETRAIN_ERR_UNSUPPORTED, e.what());
  } catch (const ane::UnknownExecutor& e) {
    refuse(ANETRAIN_ERR_ARGUMENT, e.what());
  }
}

std::vector<uint8_t> read_whole(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path + ": cannot open");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) fail(path + ": read error");
  return bytes;
}

// The program and every blob file it references, read now: the executors take weights in
// memory (the hardware path writes them to its model folder itself).
ane::KernelProgram load_kernel(const std::string& path, const std::string& weights_dir) {
  ane::KernelProgram k;
  k.name = path;
  k.program = mil::parse_program_file(path);
  const mil::Program& p = k.program;
  // The executor contract (and the hardware: a request with two inputs fails with 0x1d).
  if (p.inputs.size() != 1 || p.outputs.size() != 1)
    refuse(ANETRAIN_ERR_INPUT, path + ": the program has " + std::to_string(p.inputs.size()) + " input(s) and " +
                                   std::to_string(p.outputs.size()) +
                                   " output(s); a Neural Engine program run here has exactly one of each");
  if (!p.producer(p.outputs[0]))
    refuse(ANETRAIN_ERR_INPUT, path + ": the output '" + p.outputs[0] + "' is not computed by any op");
  const std::string dir = !weights_dir.empty() ? weights_dir
                          : fs::path(path).parent_path().empty() ? std::string(".")
                                                                  : fs::path(path).parent_path().string();
  mil::check_blob_references(p, dir);  // each error names the blob file and the byte offset
  for (const mil::Op& op : p.ops)
    for (const mil::Attr& a : op.attrs)
      if (a.value.kind == mil::Literal::Kind::blobfile) {
        const std::string rel = mil::blob_relative_path(a.value.blob_path);
        if (!k.blobs.count(rel)) k.blobs[rel] = read_whole(mil::resolve_blob_path(a.value.blob_path, dir));
      }
  return k;
}

void check_io_type(const std::string& path, const char* which, const mil::Type& t) {
  if (!t.tensor || !mil::is_float(t.elem))
    refuse(ANETRAIN_ERR_INPUT, path + ": the " + which + " is " + t.str() + "; only fp16 and fp32 tensors are supported");
}

}  // namespace

extern "C" {

anetrain_status anetrain_mil_compile(const char* backend, const char* program_path, const char* weights_dir,
                                     anetrain_mil** out) {
  return guarded("anetrain_mil_compile", [&] {
    need(out, "out");
    *out = nullptr;
    need(backend, "backend");
    need(program_path, "program_path");
    auto m = std::make_unique<anetrain_mil>();
    m->path = program_path;
    m->executor = executor_for(backend);
    const ane::KernelProgram k = load_kernel(m->path, weights_dir ? weights_dir : "");
    m->in_type = k.program.inputs[0].second;
    m->out_type = k.program.producer(k.program.outputs[0])->type;
    check_io_type(m->path, "input", m->in_type);
    check_io_type(m->path, "output", m->out_type);
    {
      std::lock_guard<std::mutex> g(g_compile_mu);
      try {
        m->program = m->executor->compile(k);
      } catch (const Error& e) {  // limits and type errors name the op; say which file it is in
        if (std::strstr(e.what(), m->path.c_str())) throw;
        fail(m->path + ": " + e.what());
      }
    }
    m->input = mil::Tensor::zeros(m->in_type);
    *out = g_mils.add(std::move(m));
  });
}

void anetrain_mil_free(anetrain_mil* mil) { g_mils.take(mil); }

anetrain_status anetrain_mil_shape(const anetrain_mil* mil, int which, int64_t* dims, size_t* rank, size_t* count) {
  return guarded("anetrain_mil_shape", [&] {
    const auto m = g_mils.get(mil);
    if (which != 0 && which != 1) refuse(ANETRAIN_ERR_ARGUMENT, "which must be 0 (the input) or 1 (the output)");
    const mil::Type& t = which == 0 ? m->in_type : m->out_type;
    if (count) *count = size_t(t.numel());
    if (!rank) {
      if (dims) refuse(ANETRAIN_ERR_ARGUMENT, "dims given without rank (its capacity)");
      return;
    }
    const size_t capacity = output_capacity(dims, "dims", rank);
    *rank = t.shape.size();
    if (t.shape.size() > capacity)
      refuse(ANETRAIN_ERR_BUFFER, "dims holds " + std::to_string(capacity) + ", the shape has " +
                                      std::to_string(t.shape.size()) + " dimensions");
    std::copy(t.shape.begin(), t.shape.end(), dims);
  });
}

anetrain_status anetrain_mil_run(anetrain_mil* mil, const float* input, size_t input_count, float* output,
                                 size_t* output_count) {
  return guarded("anetrain_mil_run", [&] {
    const auto m = g_mils.get(mil);
    need(output_count, "output_count");
    const size_t in_n = size_t(m->in_type.numel()), out_n = size_t(m->out_type.numel());
    if (input_count != in_n)
      refuse(ANETRAIN_ERR_ARGUMENT, m->path + ": the input " + m->in_type.str() + " has " + std::to_string(in_n) +
                                        " elements, " + std::to_string(input_count) + " given");
    need(input, "input");
    const size_t capacity = *output_count;
    *output_count = out_n;
    if (capacity < out_n)
      refuse(ANETRAIN_ERR_BUFFER, "output holds " + std::to_string(capacity) + ", the output " + m->out_type.str() +
                                      " has " + std::to_string(out_n) + " elements");
    need(output, "output");
    std::memcpy(m->input.ptr(), input, in_n * sizeof(float));
    // The program's storage is fp16: the value it sees is the rounded one, whichever executor.
    if (m->in_type.elem == mil::ElemType::fp16) mil::round_to_fp16(m->input.ptr(), in_n);
    const mil::Tensor& y = m->executor->evaluate(m->program, m->input);
    if (y.numel() != out_n)
      refuse(ANETRAIN_ERR_INTERNAL, m->path + ": the executor returned " + std::to_string(y.numel()) + " elements, not " +
                                        std::to_string(out_n));
    std::memcpy(output, y.ptr(), out_n * sizeof(float));
  });
}

}  // extern "C"
