#include "ane/runtime/runtime.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "ane/mil/blob.h"
#include "ane/mil/printer.h"
#include "ane/sim/fp16.h"
#include "core/error.h"
#include "core/mapped_file.h"

namespace anetrain::ane {

namespace fs = std::filesystem;

namespace {
int g_process_compiles = 0;

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

struct AneRuntime::Loaded {
  std::string name;
  ApiHandle model = nullptr, in = nullptr, out = nullptr, request = nullptr;
  mil::Type in_type, out_type;
  fs::path dir;
  sim::Tensor output;
  Timing timing;
};

int AneRuntime::process_compiles() { return g_process_compiles; }

AneRuntime::AneRuntime(std::unique_ptr<PrivateApi> api, int safe_compiles)
    : api_(std::move(api)), safe_compiles_(safe_compiles) {
  std::string err;
  if (!api_->open(err)) fail("the Neural Engine runtime is unavailable: " + err);
}

AneRuntime::~AneRuntime() {
  for (auto& p : programs_) {
    if (p->model) api_->unload(p->model, kQoS);
    for (ApiHandle h : {p->request, p->in, p->out, p->model})
      if (h) api_->release(h);
    std::error_code ec;
    if (!p->dir.empty()) fs::remove_all(p->dir, ec);
  }
}

static size_t io_bytes(const mil::Type& t) { return size_t(t.numel()) * mil::elem_bytes(t.elem); }

int AneRuntime::compile(const KernelProgram& k) {
  if (g_process_compiles >= safe_compiles_)
    fail("program '" + k.name + "': this process has compiled " + std::to_string(g_process_compiles) +
         " Neural Engine programs; the ANE compiler fails at about 119 per process (it leaks resources). anetrain "
         "compiles each distinct program once, so this means too many distinct shapes: restart the process");
  if (k.program.inputs.size() != 1 || k.program.outputs.size() != 1)
    fail("program '" + k.name + "' must have exactly one input and one output (multi-input requests fail with 0x1d)");
  auto p = std::make_unique<Loaded>();
  p->name = k.name;
  p->in_type = k.program.inputs[0].second;
  p->out_type = k.program.producer(k.program.outputs[0])->type;
  const std::string text = mil::print_program(k.program);
  std::string err;
  p->model = api_->create_model(text, k.blobs, err);
  if (!p->model) fail("program '" + k.name + "': " + err);
  // The compiler reads model.mil and the weights from <tmp>/<id>/: write them first.
  p->dir = fs::path(api_->temp_dir()) / api_->model_id(p->model);
  fs::create_directories(p->dir / "weights");
  write_file_atomic((p->dir / "model.mil").string(), text.data(), text.size());
  for (const auto& [rel, bytes] : k.blobs) write_file_atomic((p->dir / rel).string(), bytes.data(), bytes.size());
  auto t = std::chrono::steady_clock::now();
  bool compiled = api_->compile(p->model, kQoS, err);
  ++g_process_compiles;  // a failed compile spends the budget too
  p->timing.compile_ms = ms_since(t);
  if (!compiled) fail("ANE compile of program '" + k.name + "' failed: " + err);
  t = std::chrono::steady_clock::now();
  if (!api_->load(p->model, kQoS, err)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the seed's bridge retries once
    err.clear();
    if (!api_->load(p->model, kQoS, err)) fail("ANE load of program '" + k.name + "' failed: " + err);
  }
  p->timing.load_ms = ms_since(t);
  p->in = api_->create_surface(io_bytes(p->in_type), err);
  p->out = p->in ? api_->create_surface(io_bytes(p->out_type), err) : nullptr;
  p->request = p->out ? api_->create_request({p->in}, p->out, err) : nullptr;
  if (!p->request) fail("program '" + k.name + "': " + err);
  p->output = sim::Tensor::zeros(p->out_type);
  programs_.push_back(std::move(p));
  return int(programs_.size()) - 1;
}

const AneRuntime::Timing& AneRuntime::timing(int handle) const { return programs_.at(size_t(handle))->timing; }

const sim::Tensor& AneRuntime::evaluate(int handle, const sim::Tensor& input) {
  Loaded& p = *programs_.at(size_t(handle));
  if (input.numel() != size_t(p.in_type.numel())) fail("program '" + p.name + "': input of the wrong size");
  void* in = api_->lock(p.in, false);
  if (p.in_type.elem == mil::ElemType::fp16) sim::fp32_to_fp16(input.ptr(), static_cast<uint16_t*>(in), input.numel());
  else std::memcpy(in, input.ptr(), input.numel() * sizeof(float));
  api_->unlock(p.in, false);
  std::string err;
  if (!api_->evaluate(p.model, p.request, kQoS, err)) fail("ANE evaluation of program '" + p.name + "' failed: " + err);
  const void* out = api_->lock(p.out, true);
  if (p.out_type.elem == mil::ElemType::fp16)
    sim::fp16_to_fp32(static_cast<const uint16_t*>(out), p.output.ptr(), p.output.numel());
  else
    std::memcpy(p.output.ptr(), out, p.output.numel() * sizeof(float));
  api_->unlock(p.out, true);
  return p.output;
}

}  // namespace anetrain::ane
