// A stand-in for AppleNeuralEngine.framework that behaves as the seed documents the hardware
// (seed-system.md 8.3–8.7) and executes through ane-sim: the whole runtime sequence of
// runtime.cpp runs in CI without a Mac.
//   - compile reads model.mil and every weight file from <temp>/<model id>/, which the caller
//     must have written first (the real compiler does; a missing file fails the compile);
//   - weights are baked at compile time (rewriting the files afterwards changes nothing);
//   - compiles count toward ane-sim's per-process budget (~119, then the compile fails);
//   - a request with more than one input fails at evaluation with error 0x1d;
//   - evaluating while a surface is locked, or before load, fails.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "ane/mil/parser.h"
#include "ane/runtime/private_api.h"
#include "ane/sim/executor.h"
#include "ane/sim/fp16.h"

namespace anetrain::ane {
namespace {

namespace fs = std::filesystem;

struct FakeModel {
  std::string text;
  mil::BlobFiles weights;
  std::string id;
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

class FakeApi final : public PrivateApi {
 public:
  FakeApi() : temp_((fs::temp_directory_path() / ("anetrain-fake-ane-" + std::to_string(::getpid()))).string()) {}
  ~FakeApi() override {
    std::error_code ec;
    fs::remove_all(temp_, ec);
  }
  std::string platform() const override { return "fake Neural Engine runtime over ane-sim"; }
  bool open(std::string&) override { return true; }
  std::string temp_dir() override { return temp_; }

  ApiHandle create_model(const std::string& mil, const mil::BlobFiles& weights, std::string& error) override {
    if (mil.rfind("program(", 0) != 0) {
      error = "modelWithMILText:weights:optionsPlist: returned nil (the MIL text was refused)";
      return nullptr;
    }
    auto* m = new FakeModel{mil, weights, "", nullptr, false};
    uint64_t h = 1469598103934665603ull;  // FNV-1a of the text: a stable hexStringIdentifier
    for (char c : mil) h = (h ^ uint8_t(c)) * 1099511628211ull;
    char hex[32];
    std::snprintf(hex, sizeof hex, "%016llx%04zx", (unsigned long long)h, models_.size() & 0xffff);
    m->id = hex;
    models_.insert(m);
    return m;
  }
  std::string model_id(ApiHandle model) override { return static_cast<FakeModel*>(model)->id; }

  bool compile(ApiHandle model, unsigned, std::string& error) override {
    auto* m = static_cast<FakeModel*>(model);
    const fs::path dir = fs::path(temp_) / m->id;
    if (!fs::exists(dir / "model.mil")) {
      error = "ANECCompile() FAILED: " + (dir / "model.mil").string() + " does not exist (populate the model folder first)";
      return false;
    }
    for (const auto& [rel, bytes] : m->weights)
      if (!fs::exists(dir / rel)) {
        error = "ANECCompile() FAILED: weight file " + (dir / rel).string() + " is missing";
        return false;
      }
    try {
      mil::Program p = mil::parse_program_file((dir / "model.mil").string());
      m->compiled = sim::SimRuntime::process().compile(p, dir.string());
    } catch (const Error& e) {
      error = std::string("ANECCompile() FAILED: ") + e.what();
      return false;
    }
    return true;
  }
  bool load(ApiHandle model, unsigned, std::string& error) override {
    auto* m = static_cast<FakeModel*>(model);
    if (!m->compiled) {
      error = "loadWithQoS: the model is not compiled";
      return false;
    }
    return m->loaded = true;
  }
  void unload(ApiHandle model, unsigned) override { static_cast<FakeModel*>(model)->loaded = false; }

  ApiHandle create_surface(size_t bytes, std::string&) override {
    auto* s = new FakeSurface{std::vector<uint8_t>(bytes), 0};
    surfaces_.insert(s);
    return s;
  }
  void* lock(ApiHandle surface, bool) override {
    auto* s = static_cast<FakeSurface*>(surface);
    ++s->locks;
    return s->bytes.data();
  }
  void unlock(ApiHandle surface, bool) override { --static_cast<FakeSurface*>(surface)->locks; }

  ApiHandle create_request(const std::vector<ApiHandle>& inputs, ApiHandle output, std::string&) override {
    auto* r = new FakeRequest{{}, static_cast<FakeSurface*>(output)};
    for (ApiHandle h : inputs) r->inputs.push_back(static_cast<FakeSurface*>(h));
    requests_.insert(r);
    return r;
  }

  bool evaluate(ApiHandle model, ApiHandle request, unsigned, std::string& error) override {
    auto* m = static_cast<FakeModel*>(model);
    auto* r = static_cast<FakeRequest*>(request);
    if (r->inputs.size() != 1) {
      error = "evaluateWithQoS:options:request:error: Program IOSurfaces map failure (code 0x1d)";
      return false;
    }
    if (!m->loaded) {
      error = "evaluateWithQoS:options:request:error: the model is not loaded";
      return false;
    }
    if (r->inputs[0]->locks || r->output->locks) {
      error = "evaluateWithQoS:options:request:error: an I/O surface is still locked";
      return false;
    }
    const mil::Program& p = m->compiled->program();
    const mil::Type in_t = p.inputs[0].second, out_t = p.producer(p.outputs[0])->type;
    const size_t in_bytes = size_t(in_t.numel()) * mil::elem_bytes(in_t.elem);
    const size_t out_bytes = size_t(out_t.numel()) * mil::elem_bytes(out_t.elem);
    if (r->inputs[0]->bytes.size() != in_bytes || r->output->bytes.size() != out_bytes) {
      error = "evaluateWithQoS:options:request:error: surface sizes do not match the program's I/O";
      return false;
    }
    sim::Tensor in = sim::Tensor::zeros(in_t);
    if (in_t.elem == mil::ElemType::fp16)
      sim::fp16_to_fp32(reinterpret_cast<const uint16_t*>(r->inputs[0]->bytes.data()), in.ptr(), in.numel());
    else
      std::memcpy(in.ptr(), r->inputs[0]->bytes.data(), in_bytes);
    try {
      sim::Tensor out = m->compiled->evaluate({in}).at(0);
      if (out_t.elem == mil::ElemType::fp16)
        sim::fp32_to_fp16(out.ptr(), reinterpret_cast<uint16_t*>(r->output->bytes.data()), out.numel());
      else
        std::memcpy(r->output->bytes.data(), out.ptr(), out_bytes);
    } catch (const Error& e) {
      error = e.what();
      return false;
    }
    return true;
  }

  void release(ApiHandle h) override {
    if (models_.erase(static_cast<FakeModel*>(h))) delete static_cast<FakeModel*>(h);
    else if (surfaces_.erase(static_cast<FakeSurface*>(h))) delete static_cast<FakeSurface*>(h);
    else if (requests_.erase(static_cast<FakeRequest*>(h))) delete static_cast<FakeRequest*>(h);
  }

 private:
  std::string temp_;
  std::set<FakeModel*> models_;
  std::set<FakeSurface*> surfaces_;
  std::set<FakeRequest*> requests_;
};

}  // namespace

std::unique_ptr<PrivateApi> make_fake_api() { return std::make_unique<FakeApi>(); }

}  // namespace anetrain::ane
