// The private Neural Engine API as the runtime uses it: a dozen calls, behind an interface so
// the same runtime code (runtime.cpp) runs against the real framework on a Mac (AppleApi) and,
// on any OS, against a fake that behaves as the seed documents the hardware (FakeApi): the
// compiler reads the weights from a folder that must be populated before compiling, a request
// with more than one input fails with 0x1d, about 119 compiles fit in a process, and weights are
// baked at compile time. The fake executes through ane-sim.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "ane/mil/blob.h"

namespace anetrain::ane {

using ApiHandle = void*;

class PrivateApi {
 public:
  virtual ~PrivateApi() = default;
  virtual std::string platform() const = 0;  // what executes: "Apple Neural Engine (H16G)", "fake runtime over ane-sim"
  virtual bool open(std::string& error) = 0;
  virtual std::string temp_dir() = 0;  // NSTemporaryDirectory(): the compiler reads <temp>/<model id>/
  // Descriptor from MIL text + weights dictionary ({"@model_path/weights/x.bin": data}), then the
  // in-memory model. nullptr with `error` set on failure.
  virtual ApiHandle create_model(const std::string& mil, const mil::BlobFiles& weights, std::string& error) = 0;
  virtual std::string model_id(ApiHandle model) = 0;  // hexStringIdentifier
  virtual bool compile(ApiHandle model, unsigned qos, std::string& error) = 0;
  virtual bool load(ApiHandle model, unsigned qos, std::string& error) = 0;
  virtual void unload(ApiHandle model, unsigned qos) = 0;
  virtual ApiHandle create_surface(size_t bytes, std::string& error) = 0;
  virtual void* lock(ApiHandle surface, bool read_only) = 0;
  virtual void unlock(ApiHandle surface, bool read_only) = 0;
  virtual ApiHandle create_request(const std::vector<ApiHandle>& inputs, ApiHandle output, std::string& error) = 0;
  virtual bool evaluate(ApiHandle model, ApiHandle request, unsigned qos, std::string& error) = 0;
  virtual void release(ApiHandle handle) = 0;
};

std::unique_ptr<PrivateApi> make_fake_api();
#if defined(__APPLE__)
std::unique_ptr<PrivateApi> make_apple_api();
#endif

}  // namespace anetrain::ane
