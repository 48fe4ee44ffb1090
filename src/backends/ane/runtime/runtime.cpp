#include "backends/ane/runtime/runtime.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "mil/printer.h"
#include "backends/ane/chip_peaks.h"
#include "backends/ane/runtime/framework_names.h"
#include "backends/ane/runtime/model_folder.h"
#include "mil/fp16.h"
#include "core/error.h"
#include "core/warn.h"

namespace anetrain::ane {

namespace {
int g_process_compiles = 0;

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

size_t io_bytes(const mil::Type& t) { return size_t(t.numel()) * mil::elem_bytes(t.elem); }

// Everything the runtime sends. An Objective-C message to a selector the
// class lost in a macOS update does not fail cleanly, so each is checked before the first call.
struct RequiredMethod {
  const char* cls;
  const char* selector;
  bool class_method;
};
constexpr const char* kRequiredClasses[] = {ANE_CLASS_DESCRIPTOR, ANE_CLASS_MODEL, ANE_CLASS_REQUEST,
                                            ANE_CLASS_SURFACE_OBJECT};
constexpr RequiredMethod kRequiredMethods[] = {
    {ANE_CLASS_DESCRIPTOR, ANE_SEL_DESCRIPTOR_CREATE, true}, {ANE_CLASS_MODEL, ANE_SEL_MODEL_CREATE, true},
    {ANE_CLASS_MODEL, ANE_SEL_MODEL_ID, false},              {ANE_CLASS_MODEL, ANE_SEL_COMPILE, false},
    {ANE_CLASS_MODEL, ANE_SEL_LOAD, false},                  {ANE_CLASS_MODEL, ANE_SEL_EVALUATE, false},
    {ANE_CLASS_MODEL, ANE_SEL_UNLOAD, false},                {ANE_CLASS_REQUEST, ANE_SEL_REQUEST_CREATE, true},
    {ANE_CLASS_SURFACE_OBJECT, ANE_SEL_WRAP_SURFACE, true},
};
}  // namespace

// An object of the framework, released when it goes.
class AneRuntime::Handle {
 public:
  Handle() = default;
  Handle(PrivateApi* api, ApiHandle h) : api_(api), h_(h) {}
  Handle(Handle&& o) noexcept : api_(o.api_), h_(o.h_) { o.h_ = nullptr; }
  Handle& operator=(Handle&& o) noexcept {
    std::swap(api_, o.api_);
    std::swap(h_, o.h_);
    return *this;
  }
  ~Handle() {
    if (h_) api_->release(h_);
  }
  ApiHandle get() const { return h_; }

 private:
  PrivateApi* api_ = nullptr;
  ApiHandle h_ = nullptr;
};

// One compiled program. Built step by step in compile(); whatever step throws, destroying it
// undoes the steps done: unload, release the request, surfaces and model, remove the folder.
struct AneRuntime::Loaded {
  explicit Loaded(PrivateApi& a) : api(a) {}
  ~Loaded() {
    if (loaded) api.unload(model.get(), kQoS);
  }
  PrivateApi& api;
  std::string name;
  mil::Type in_type, out_type;
  ModelFolder folder;  // members go in reverse order: the folder after the model
  Handle model;
  bool loaded = false;
  Handle out, in, request;
  mil::Tensor output;
  Timing timing;
};

struct AneRuntime::Staged {
  int program, activation_columns;
  Handle surface, request;  // the request goes first
};

std::string ApiError::str() const {
  char code_text[64];
  std::snprintf(code_text, sizeof code_text, "code %ld = 0x%lx", code, static_cast<unsigned long>(code));
  return call + " -> " + description + (domain.empty() ? " (no NSError)" : " (NSError domain " + domain + ", " + code_text + ")");
}

int AneRuntime::process_compiles() { return g_process_compiles; }
void AneRuntime::reset_process_compiles() { g_process_compiles = 0; }

AneRuntime::AneRuntime(std::unique_ptr<PrivateApi> api, int safe_compiles)
    : api_(std::move(api)), safe_compiles_(safe_compiles) {
  ApiError err;
  if (!api_->open(err)) fail("the Neural Engine runtime is unavailable: " + err.str());
  check_framework();
}

AneRuntime::~AneRuntime() {
  staged_.clear();  // their requests bind the programs' output surfaces
  programs_.clear();
}

void AneRuntime::check_framework() {
  std::vector<std::string> missing;
  for (const char* cls : kRequiredClasses)
    if (!api_->has_class(cls)) missing.push_back(std::string("class ") + cls);
  for (const RequiredMethod& m : kRequiredMethods)
    if (api_->has_class(m.cls) && !api_->responds(m.cls, m.selector, m.class_method))
      missing.push_back(std::string(m.class_method ? "+[" : "-[") + m.cls + " " + m.selector + "]");
  if (missing.empty()) return;
  std::string list;
  for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
  fail("AppleNeuralEngine.framework on macOS " + api_->os_version() + " lacks what anetrain calls: " + list +
       ". The private API changed in this macOS release and the ane backend needs updating for it (the ane-sim "
       "backend runs the same programs anywhere)");
}

int AneRuntime::compile(const KernelProgram& k) {
  if (g_process_compiles >= safe_compiles_)
    fail("program '" + k.name + "': this process has compiled " + std::to_string(g_process_compiles) +
         " Neural Engine programs; the ANE compiler fails at about 119 per process (it leaks resources). anetrain "
         "compiles each distinct program once, so this means too many distinct shapes: restart the process");
  if (k.program.inputs.size() != 1 || k.program.outputs.size() != 1 || !k.program.producer(k.program.outputs[0]))
    fail("program '" + k.name + "' must have exactly one input and one computed output (multi-input requests fail with 0x1d)");
  auto p = std::make_unique<Loaded>(*api_);
  p->name = k.name;
  p->in_type = k.program.inputs[0].second;
  p->out_type = k.program.producer(k.program.outputs[0])->type;
  const std::string text = mil::print_program(k.program);
  ApiError err;
  p->model = Handle(api_.get(), api_->create_model(k.name, text, k.blobs, err));
  if (!p->model.get()) throw ProgramRejected("program '" + k.name + "': " + err.str());
  // The compiler reads model.mil and the weights from <tmp>/<id>/: write them first.
  p->folder = ModelFolder::populate(api_->temp_dir(), api_->model_id(p->model.get()), k.name, text, k.blobs);
  auto t = std::chrono::steady_clock::now();
  const bool compiled = api_->compile(p->model.get(), kQoS, err);
  ++g_process_compiles;  // a failed compile spends the budget too
  p->timing.compile_ms = ms_since(t);
  if (!compiled) throw ProgramRejected("ANE compile of program '" + k.name + "' failed: " + err.str());
  t = std::chrono::steady_clock::now();
  if (!api_->load(p->model.get(), kQoS, err)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the seed's bridge retries once
    ApiError retry;
    if (!api_->load(p->model.get(), kQoS, retry))
      throw ProgramRejected("ANE load of program '" + k.name + "' failed twice: " + err.str() + "; after 100 ms: " + retry.str());
  }
  p->loaded = true;
  p->timing.load_ms = ms_since(t);
  p->in = Handle(api_.get(), api_->create_surface(io_bytes(p->in_type), err));
  if (!p->in.get()) fail("program '" + k.name + "': input surface: " + err.str());
  p->out = Handle(api_.get(), api_->create_surface(io_bytes(p->out_type), err));
  if (!p->out.get()) fail("program '" + k.name + "': output surface: " + err.str());
  p->request = Handle(api_.get(), api_->create_request({p->in.get()}, p->out.get(), err));
  if (!p->request.get()) fail("program '" + k.name + "': request: " + err.str());
  p->output = mil::Tensor::zeros(p->out_type);
  programs_.push_back(std::move(p));
  return int(programs_.size()) - 1;
}

const AneRuntime::Timing& AneRuntime::timing(int handle) const { return programs_.at(size_t(handle))->timing; }

MatrixPeak AneRuntime::peak() const {
  const std::string chip = api_->chip();
  if (chip.empty()) return Executor::peak();  // the fake framework: simulated
  const ChipPeak* c = find_chip_peak(chip);
  if (!c)
    return {0, true, chip + ": no published Neural Engine peak in anetrain's table (docs/ane.md); no utilisation claimed"};
  char text[256];
  std::snprintf(text, sizeof text, "%s: Apple's %g TOPS (%s), %g TFLOPS fp16 (docs/ane.md)", chip.c_str(),
                c->published_tops, c->counts == PublishedPrecision::int8 ? "int8" : "fp16", c->fp16_tflops());
  return {c->fp16_tflops() * 1000, true, text};
}
const mil::Type& AneRuntime::input_type(int handle) const { return programs_.at(size_t(handle))->in_type; }
std::string AneRuntime::program_name(int handle) const { return programs_.at(size_t(handle))->name; }

uint64_t AneRuntime::write_columns(const Loaded& p, ApiHandle surface, const mil::Tensor& src, int64_t first,
                                   int64_t count) {
  const mil::Type& t = p.in_type;
  const int64_t C = t.shape[1], W = t.shape[3], src_w = src.type.shape[3];
  void* base = api_->lock(surface, false);
  if (!base) fail("program '" + p.name + "': cannot lock its input surface for writing");
  for (int64_t c = 0; c < C; ++c) {
    const float* from = src.ptr() + c * src_w + first;
    if (t.elem == mil::ElemType::fp16)
      mil::fp32_to_fp16(from, static_cast<uint16_t*>(base) + c * W + first, size_t(count));
    else
      std::memcpy(static_cast<float*>(base) + c * W + first, from, size_t(count) * sizeof(float));
  }
  api_->unlock(surface, false);
  return uint64_t(C * count) * mil::elem_bytes(t.elem);
}

const mil::Tensor& AneRuntime::evaluate(int handle, const mil::Tensor& input) {
  Loaded& p = *programs_.at(size_t(handle));
  if (input.numel() != size_t(p.in_type.numel())) fail("program '" + p.name + "': input of the wrong size");
  void* in = api_->lock(p.in.get(), false);
  if (!in) fail("program '" + p.name + "': cannot lock its input surface for writing");
  if (p.in_type.elem == mil::ElemType::fp16) mil::fp32_to_fp16(input.ptr(), static_cast<uint16_t*>(in), input.numel());
  else std::memcpy(in, input.ptr(), input.numel() * sizeof(float));
  api_->unlock(p.in.get(), false);
  conversions_.whole_input_bytes += io_bytes(p.in_type);
  return run(p, p.request.get());
}

int AneRuntime::open_staged(int handle, int activation_columns) {
  Loaded& p = *programs_.at(size_t(handle));
  const mil::Shape& shape = p.in_type.shape;
  if (shape.size() != 4 || shape[0] != 1 || shape[2] != 1 || activation_columns < 1 || activation_columns > shape[3])
    fail("program '" + p.name + "': cannot stage an input " + p.in_type.str() + " with " +
         std::to_string(activation_columns) + " activation columns");
  auto s = std::make_unique<Staged>();
  s->program = handle;
  s->activation_columns = activation_columns;
  ApiError err;
  s->surface = Handle(api_.get(), api_->create_surface(io_bytes(p.in_type), err));
  if (!s->surface.get()) fail("program '" + p.name + "': staged input surface: " + err.str());
  void* base = api_->lock(s->surface.get(), false);  // "its contents start as zeros", whatever IOSurface gives
  if (!base) fail("program '" + p.name + "': cannot lock a staged input surface");
  std::memset(base, 0, io_bytes(p.in_type));
  api_->unlock(s->surface.get(), false);
  s->request = Handle(api_.get(), api_->create_request({s->surface.get()}, p.out.get(), err));
  if (!s->request.get()) fail("program '" + p.name + "': staged input request: " + err.str());
  staged_.push_back(std::move(s));
  return int(staged_.size()) - 1;
}

void AneRuntime::write_weights(int staged, const mil::Tensor& input) {
  Staged& s = *staged_.at(size_t(staged));
  const Loaded& p = *programs_.at(size_t(s.program));
  check_staged_shape(p.name, p.in_type, s.activation_columns, input, true);
  conversions_.weight_bytes += write_columns(p, s.surface.get(), input, s.activation_columns,
                                             p.in_type.shape[3] - s.activation_columns);
}

const mil::Tensor& AneRuntime::evaluate_staged(int staged, const mil::Tensor& activations) {
  Staged& s = *staged_.at(size_t(staged));
  Loaded& p = *programs_.at(size_t(s.program));
  check_staged_shape(p.name, p.in_type, s.activation_columns, activations, false);
  conversions_.activation_bytes += write_columns(p, s.surface.get(), activations, 0, s.activation_columns);
  return run(p, s.request.get());
}

// A failed evaluation is tried once more before it is fatal: the seed's bridge retries a failed
// load for the ANE's slot reclamation, and a training run should not end on one transient failure
// of an evaluation it can repeat (the input surface is unchanged, the output is overwritten).
const mil::Tensor& AneRuntime::run(Loaded& p, ApiHandle request) {
  ApiError first;
  if (!api_->evaluate(p.model.get(), request, kQoS, first)) {
    ApiError second;
    if (!api_->evaluate(p.model.get(), request, kQoS, second))
      throw ProgramRejected("ANE evaluation of program '" + p.name + "' failed twice: " + first.str() + "; retried: " + second.str());
    if (evaluate_retries_++ == 0)
      warn("ANE evaluation of program '" + p.name + "' failed once and succeeded when retried (" + first.str() +
           "); later retries are counted, not reported");
  }
  const void* out = api_->lock(p.out.get(), true);
  if (!out) fail("program '" + p.name + "': cannot lock its output surface for reading");
  if (p.out_type.elem == mil::ElemType::fp16)
    mil::fp16_to_fp32(static_cast<const uint16_t*>(out), p.output.ptr(), p.output.numel());
  else
    std::memcpy(p.output.ptr(), out, p.output.numel() * sizeof(float));
  api_->unlock(p.out.get(), true);
  return p.output;
}

}  // namespace anetrain::ane
