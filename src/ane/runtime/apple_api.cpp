// PrivateApi over the C calls of apple_ane.c (macOS). Built on Apple platforms only; CI
// syntax-checks it everywhere (scripts/check_macos_sources.sh).
#include "ane/runtime/apple_ane.h"
#include "ane/runtime/private_api.h"

namespace anetrain::ane {
namespace {

class AppleApi final : public PrivateApi {
 public:
  std::string platform() const override {
    char sub[64];
    ane_device_subtype(sub, sizeof sub);
    return std::string("Apple Neural Engine (") + sub + ")";
  }
  bool open(std::string& error) override { return call(error, [&](char* e, size_t n) { return ane_open(e, n); }); }
  std::string temp_dir() override { return ane_temp_dir(); }
  ApiHandle create_model(const std::string& mil, const mil::BlobFiles& weights, std::string& error) override {
    std::vector<std::string> keys;
    std::vector<const char*> key_ptrs;
    std::vector<const void*> data;
    std::vector<size_t> sizes;
    for (const auto& [rel, bytes] : weights) keys.push_back("@model_path/" + rel);
    for (const auto& k : keys) key_ptrs.push_back(k.c_str());
    for (const auto& [rel, bytes] : weights) data.push_back(bytes.data()), sizes.push_back(bytes.size());
    char err[1024] = "";
    ApiHandle m = ane_model_create(mil.data(), mil.size(), int(keys.size()), key_ptrs.data(), data.data(), sizes.data(),
                                   err, sizeof err);
    if (!m) error = err;
    return m;
  }
  std::string model_id(ApiHandle model) override {
    char id[256] = "";
    ane_model_id(model, id, sizeof id);
    return id;
  }
  bool compile(ApiHandle m, unsigned qos, std::string& error) override {
    return call(error, [&](char* e, size_t n) { return ane_model_compile(m, qos, e, n); });
  }
  bool load(ApiHandle m, unsigned qos, std::string& error) override {
    return call(error, [&](char* e, size_t n) { return ane_model_load(m, qos, e, n); });
  }
  void unload(ApiHandle m, unsigned qos) override { ane_model_unload(m, qos); }
  ApiHandle create_surface(size_t bytes, std::string& error) override {
    char err[256] = "";
    ApiHandle s = ane_surface_create(bytes, err, sizeof err);
    if (!s) error = err;
    return s;
  }
  void* lock(ApiHandle s, bool read_only) override { return ane_surface_lock(s, read_only); }
  void unlock(ApiHandle s, bool read_only) override { ane_surface_unlock(s, read_only); }
  ApiHandle create_request(const std::vector<ApiHandle>& inputs, ApiHandle output, std::string& error) override {
    char err[256] = "";
    ApiHandle r = ane_request_create(inputs.data(), int(inputs.size()), output, err, sizeof err);
    if (!r) error = err;
    return r;
  }
  bool evaluate(ApiHandle m, ApiHandle request, unsigned qos, std::string& error) override {
    return call(error, [&](char* e, size_t n) { return ane_model_evaluate(m, request, qos, e, n); });
  }
  void release(ApiHandle h) override { ane_release(h); }

 private:
  template <typename F>
  static bool call(std::string& error, F&& f) {
    char err[1024] = "";
    bool ok = f(err, sizeof err) != 0;
    if (!ok) error = err;
    return ok;
  }
};

}  // namespace

#if defined(__APPLE__)
std::unique_ptr<PrivateApi> make_apple_api() { return std::make_unique<AppleApi>(); }
#else
// Keeps the class referenced (and so checked) when the file is syntax-checked off macOS.
[[maybe_unused]] static std::unique_ptr<PrivateApi> unused_apple_api() { return std::make_unique<AppleApi>(); }
#endif

}  // namespace anetrain::ane
