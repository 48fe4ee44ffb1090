// The private Neural Engine API as the runtime uses it: a dozen calls, behind an interface so
// the same runtime code (runtime.cpp) runs against the real framework on a Mac (AppleApi) and,
// on any OS, against a fake that behaves as the seed documents the hardware (FakeApi in
// backends/ane/fake/): the compiler reads the weights from a folder that must be populated
// before compiling, a request with more than one input fails with 0x1d, about 119 compiles fit
// in a process, and weights are baked at compile time. The fake executes through ane-sim.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "mil/blob.h"

namespace anetrain::ane {

using ApiHandle = void*;

// Why a call failed. The framework's NSError carries more than its localizedDescription: its
// `description` names the underlying error and its domain and code identify it, which is what a
// bug report against a new macOS needs. Calls that fail without an NSError (a nil return) leave
// domain empty and say what happened in `description`.
struct ApiError {
  std::string call;         // the selector or function that failed
  std::string description;  // NSError description, or our own words when there was no NSError
  std::string domain;       // NSError domain; empty when the call gave no NSError
  long code = 0;            // NSError code
  // "<call> -> <description> (NSError domain <domain>, code <n> = 0x..)", or "... (no NSError)".
  std::string str() const;
};

class PrivateApi {
 public:
  virtual ~PrivateApi() = default;
  virtual std::string platform() const = 0;  // what executes: "Apple Neural Engine (H16G)", "fake runtime over ane-sim"
  // Loads the framework. Whether it has each class and method the runtime calls is asked
  // separately (has_class, responds), so that the runtime can name every missing one.
  virtual bool open(ApiError& error) = 0;
  virtual std::string os_version() = 0;  // for errors: "Version 15.2 (Build 24C101)"
  // The chip whose Neural Engine runs the programs, as the OS names it ("Apple M4 Pro"); "" when
  // no hardware does (the fake).
  virtual std::string chip() const { return ""; }
  virtual bool has_class(const std::string& cls) = 0;
  // Whether `cls` (its class object when `class_method`, else its instances) responds to `selector`.
  virtual bool responds(const std::string& cls, const std::string& selector, bool class_method) = 0;
  virtual std::string temp_dir() = 0;  // NSTemporaryDirectory(): the compiler reads <temp>/<model id>/
  // Descriptor from MIL text + weights dictionary ({"@model_path/weights/x.bin": data}), then the
  // in-memory model. `name` is the program's name, for messages (the framework never sees it).
  // nullptr with `error` set on failure.
  virtual ApiHandle create_model(const std::string& name, const std::string& mil, const mil::BlobFiles& weights,
                                 ApiError& error) = 0;
  virtual std::string model_id(ApiHandle model) = 0;  // hexStringIdentifier; "" when nil
  virtual bool compile(ApiHandle model, unsigned qos, ApiError& error) = 0;
  virtual bool load(ApiHandle model, unsigned qos, ApiError& error) = 0;
  virtual void unload(ApiHandle model, unsigned qos) = 0;
  virtual ApiHandle create_surface(size_t bytes, ApiError& error) = 0;
  virtual void* lock(ApiHandle surface, bool read_only) = 0;  // nullptr when the lock fails
  virtual void unlock(ApiHandle surface, bool read_only) = 0;
  virtual ApiHandle create_request(const std::vector<ApiHandle>& inputs, ApiHandle output, ApiError& error) = 0;
  virtual bool evaluate(ApiHandle model, ApiHandle request, unsigned qos, ApiError& error) = 0;
  virtual void release(ApiHandle handle) = 0;
};

#if defined(__APPLE__)
std::unique_ptr<PrivateApi> make_apple_api();
#endif

}  // namespace anetrain::ane
