// A stand-in for AppleNeuralEngine.framework that behaves as the original system documented the
// hardware (model folders, compile/load, IOSurface requests, the compile limit) and executes through ane-sim: the whole runtime sequence of
// runtime.cpp runs in CI without a Mac.
//   - compile reads model.mil and every weight file from <temp>/<model id>/, which the caller
//     must have written first (the real compiler does; a missing file fails the compile);
//   - weights are baked at compile time (rewriting the files afterwards changes nothing);
//   - compiles count toward ane-sim's per-process budget (~119, then the compile fails);
//   - a request with more than one input fails at evaluation with error 0x1d;
//   - evaluating while a surface is locked, or before load, fails.
// Its failures read like NSErrors (description, domain, code) in a domain of its own,
// "anetrain.fake-ane": the seed does not record the real domains. FakeOptions (fake_api.h) make
// it fail on purpose.
#include "backends/ane/fake/fake_api.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <set>

#include "mil/parser.h"
#include "mil/sim/compiler.h"
#include "mil/fp16.h"
#include "core/error.h"

namespace anetrain::ane {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDomain = "anetrain.fake-ane";

ApiError ns_error(const std::string& call, long code, const std::string& text) {
  return ApiError{call, "Error Domain=" + std::string(kDomain) + " Code=" + std::to_string(code) + " \"" + text +
                            "\" UserInfo={NSLocalizedDescription=" + text + "}",
                  kDomain, code};
}

struct FakeModel {
  std::string name, text, id;
  mil::BlobFiles weights;
  std::vector<std::string> ops;  // the operations its MIL uses, for op-matched faults
  std::unique_ptr<sim::SimModel> compiled;
  bool loaded = false;
};
struct FakeSurface {
  std::vector<uint8_t> bytes;
  int locks = 0;
};
struct FakeRequest {
  std::vector<FakeSurface*> inputs;
  FakeSurface* output;
};

std::vector<std::string> ops_of(const std::string& text) {
  std::vector<std::string> ops;
  try {
    for (const mil::Op& op : mil::parse_program(text).ops) ops.push_back(op.kind);
  } catch (const Error&) {  // text the compiler will refuse anyway: no operations to match
  }
  return ops;
}

const char* step_name(FakeStep s) {
  switch (s) {
    case FakeStep::compile: return "compile";
    case FakeStep::load: return "load";
    case FakeStep::evaluate: return "evaluate";
    case FakeStep::surface: return "surface creation";
    case FakeStep::request: return "request creation";
  }
  return "?";
}

std::atomic<int> g_instances{0};

class FakeApi final : public PrivateApi {
 public:
  FakeApi(FakeOptions options, std::shared_ptr<FakeCensus> census)
      : options_(std::move(options)), census_(census ? std::move(census) : std::make_shared<FakeCensus>()) {
    for (const FakeFault& f : options_.faults) remaining_.push_back(f.times);
    temp_ = options_.temp_dir;
    if (temp_.empty()) {  // one folder per instance, so that one fake's teardown spares another's
      temp_ = (fs::temp_directory_path() /
               ("anetrain-fake-ane-" + std::to_string(::getpid()) + "-" + std::to_string(g_instances++)))
                  .string();
      fs::create_directories(temp_);
      own_temp_ = true;
    }
  }
  ~FakeApi() override {
    std::error_code ec;
    if (own_temp_) fs::remove_all(temp_, ec);
  }
  std::string platform() const override { return "fake Neural Engine runtime over ane-sim"; }
  bool open(ApiError&) override { return true; }
  std::string os_version() override { return options_.os_version; }
  std::string chip() const override { return options_.chip; }
  bool has_class(const std::string& cls) override { return !missing(cls); }
  bool responds(const std::string& cls, const std::string& selector, bool) override {
    return !missing(cls) && !missing(selector);
  }
  std::string temp_dir() override { return temp_; }

  ApiHandle create_model(const std::string& name, const std::string& mil, const mil::BlobFiles& weights,
                         ApiError& error) override {
    if (mil.rfind("program(", 0) != 0) {
      error = ApiError{"modelWithMILText:weights:optionsPlist:", "returned nil (the MIL text or the weights were refused)", "", 0};
      return nullptr;
    }
    auto* m = new FakeModel{name, mil, "", weights, ops_of(mil), nullptr, false};
    uint64_t h = 1469598103934665603ull;  // FNV-1a of the text: a stable hexStringIdentifier
    for (char c : mil) h = (h ^ uint8_t(c)) * 1099511628211ull;
    char hex[32];
    std::snprintf(hex, sizeof hex, "%016llx%04zx", (unsigned long long)h, models_.size() & 0xffff);
    m->id = options_.model_id ? *options_.model_id : hex;
    models_.insert(m);
    census_->models++;
    return m;
  }
  std::string model_id(ApiHandle model) override { return static_cast<FakeModel*>(model)->id; }

  bool compile(ApiHandle model, unsigned, ApiError& error) override {
    auto* m = static_cast<FakeModel*>(model);
    census_->compiles++;
    if (inject(FakeStep::compile, m, "compileWithQoS:options:error:", error)) return false;
    const fs::path dir = fs::path(temp_) / m->id;
    auto compiler_error = [&](const std::string& text) {
      error = ns_error("compileWithQoS:options:error:", 3, "ANECCompile() FAILED: " + text);
      return false;
    };
    if (!fs::exists(dir / "model.mil"))
      return compiler_error((dir / "model.mil").string() + " does not exist (populate the model folder first)");
    for (const auto& [rel, bytes] : m->weights)
      if (!fs::exists(dir / rel)) return compiler_error("weight file " + (dir / rel).string() + " is missing");
    try {
      mil::Program p = mil::parse_program_file((dir / "model.mil").string());
      m->compiled = sim::Compiler::process().compile(p, dir.string());
    } catch (const Error& e) {
      return compiler_error(e.what());
    }
    return true;
  }
  bool load(ApiHandle model, unsigned, ApiError& error) override {
    auto* m = static_cast<FakeModel*>(model);
    census_->loads++;
    if (inject(FakeStep::load, m, "loadWithQoS:options:error:", error)) return false;
    if (!m->compiled) {
      error = ns_error("loadWithQoS:options:error:", 4, "the model is not compiled");
      return false;
    }
    if (!m->loaded) census_->loaded++;
    return m->loaded = true;
  }
  void unload(ApiHandle model, unsigned) override {
    auto* m = static_cast<FakeModel*>(model);
    if (m->loaded) census_->loaded--;
    m->loaded = false;
  }

  ApiHandle create_surface(size_t bytes, ApiError& error) override {
    if (inject(FakeStep::surface, nullptr, "IOSurfaceCreate", error)) return nullptr;
    auto* s = new FakeSurface{std::vector<uint8_t>(bytes), 0};
    surfaces_.insert(s);
    census_->surfaces++;
    return s;
  }
  void* lock(ApiHandle surface, bool) override {
    auto* s = static_cast<FakeSurface*>(surface);
    ++s->locks;
    return s->bytes.data();
  }
  void unlock(ApiHandle surface, bool) override { --static_cast<FakeSurface*>(surface)->locks; }

  ApiHandle create_request(const std::vector<ApiHandle>& inputs, ApiHandle output, ApiError& error) override {
    if (inject(FakeStep::request, nullptr, "requestWithInputs:inputIndices:outputs:outputIndices:weightsBuffer:"
                                           "perfStats:procedureIndex:", error))
      return nullptr;
    auto* r = new FakeRequest{{}, static_cast<FakeSurface*>(output)};
    for (ApiHandle h : inputs) r->inputs.push_back(static_cast<FakeSurface*>(h));
    requests_.insert(r);
    census_->requests++;
    return r;
  }

  bool evaluate(ApiHandle model, ApiHandle request, unsigned, ApiError& error) override;

  void release(ApiHandle h) override {
    if (models_.erase(static_cast<FakeModel*>(h))) {
      if (static_cast<FakeModel*>(h)->loaded) census_->loaded--;  // the framework frees it; a leak all the same
      delete static_cast<FakeModel*>(h), census_->models--;
    } else if (surfaces_.erase(static_cast<FakeSurface*>(h))) {
      delete static_cast<FakeSurface*>(h), census_->surfaces--;
    } else if (requests_.erase(static_cast<FakeRequest*>(h))) {
      delete static_cast<FakeRequest*>(h), census_->requests--;
    }
  }

 private:
  bool missing(const std::string& name) const {
    return std::find(options_.missing.begin(), options_.missing.end(), name) != options_.missing.end();
  }
  // Whether a fault of `step` applies to this call (model: the program's, when the step has one).
  bool inject(FakeStep step, const FakeModel* m, const std::string& call, ApiError& error) {
    for (size_t i = 0; i < options_.faults.size(); ++i) {
      const FakeFault& f = options_.faults[i];
      if (f.step != step || remaining_[i] == 0) continue;
      if (m && !fake_fault_matches(f, m->name, m->ops)) continue;
      if (remaining_[i] > 0) --remaining_[i];
      census_->injected_failures++;
      error = ns_error(call, 1000 + int(step),
                       std::string("injected ") + step_name(step) + " failure" +
                           (m ? " of program '" + m->name + "'" : std::string()) + " (FakeOptions / ANETRAIN_FAKE_ANE)");
      return true;
    }
    return false;
  }

  FakeOptions options_;
  std::shared_ptr<FakeCensus> census_;
  std::vector<int> remaining_;  // per fault: failures left (-1: unlimited)
  std::string temp_;
  bool own_temp_ = false;
  std::set<FakeModel*> models_;
  std::set<FakeSurface*> surfaces_;
  std::set<FakeRequest*> requests_;
};

bool FakeApi::evaluate(ApiHandle model, ApiHandle request, unsigned, ApiError& error) {
  auto* m = static_cast<FakeModel*>(model);
  auto* r = static_cast<FakeRequest*>(request);
  census_->evaluations++;
  const char* call = "evaluateWithQoS:options:request:error:";
  if (r->inputs.size() != 1) {
    error = ns_error(call, 0x1d, "Program IOSurfaces map failure");
    return false;
  }
  if (inject(FakeStep::evaluate, m, call, error)) return false;
  if (!m->loaded) {
    error = ns_error(call, 5, "the model is not loaded");
    return false;
  }
  if (r->inputs[0]->locks || r->output->locks) {
    error = ns_error(call, 6, "an I/O surface is still locked");
    return false;
  }
  const mil::Program& p = m->compiled->program();
  const mil::Type in_t = p.inputs[0].second, out_t = p.producer(p.outputs[0])->type;
  const size_t in_bytes = size_t(in_t.numel()) * mil::elem_bytes(in_t.elem);
  const size_t out_bytes = size_t(out_t.numel()) * mil::elem_bytes(out_t.elem);
  if (r->inputs[0]->bytes.size() != in_bytes || r->output->bytes.size() != out_bytes) {
    error = ns_error(call, 7, "surface sizes do not match the program's I/O");
    return false;
  }
  mil::Tensor in = mil::Tensor::zeros(in_t);
  if (in_t.elem == mil::ElemType::fp16)
    mil::fp16_to_fp32(reinterpret_cast<const uint16_t*>(r->inputs[0]->bytes.data()), in.ptr(), in.numel());
  else
    std::memcpy(in.ptr(), r->inputs[0]->bytes.data(), in_bytes);
  try {
    mil::Tensor out = m->compiled->evaluate({in}).at(0);
    if (out_t.elem == mil::ElemType::fp16)
      mil::fp32_to_fp16(out.ptr(), reinterpret_cast<uint16_t*>(r->output->bytes.data()), out.numel());
    else
      std::memcpy(r->output->bytes.data(), out.ptr(), out_bytes);
  } catch (const Error& e) {
    error = ns_error(call, 8, e.what());
    return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<PrivateApi> make_fake_api(FakeOptions options, std::shared_ptr<FakeCensus> census) {
  return std::make_unique<FakeApi>(std::move(options), std::move(census));
}

}  // namespace anetrain::ane
