// PrivateApi over the C calls of apple_ane.c (macOS). Built on Apple platforms only; CI
// syntax-checks it everywhere (scripts/check_macos_sources.sh).
#include "backends/ane/chip_peaks.h"
#include "backends/ane/runtime/apple_ane.h"
#include "backends/ane/runtime/private_api.h"

namespace anetrain::ane {
namespace {

ApiError from_c(const ane_error& e) { return ApiError{e.call, e.description, e.domain, e.code}; }

class AppleApi final : public PrivateApi {
 public:
  std::string platform() const override {
    char sub[64];
    ane_device_subtype(sub, sizeof sub);
    return std::string("Apple Neural Engine (") + sub + ")";
  }
  std::string chip() const override { return this_machine_chip(); }
  bool open(ApiError& error) override {
    return call(error, [&](ane_error* e) { return ane_open(e); });
  }
  std::string os_version() override {
    char v[256] = "";
    ane_os_version(v, sizeof v);
    return v;
  }
  bool has_class(const std::string& cls) override { return ane_has_class(cls.c_str()) != 0; }
  bool responds(const std::string& cls, const std::string& selector, bool class_method) override {
    return ane_responds(cls.c_str(), selector.c_str(), class_method ? 1 : 0) != 0;
  }
  std::string temp_dir() override { return ane_temp_dir(); }
  ApiHandle create_model(const std::string&, const std::string& mil, const mil::BlobFiles& weights,
                         ApiError& error) override {
    std::vector<std::string> keys;
    std::vector<const char*> key_ptrs;
    std::vector<const void*> data;
    std::vector<size_t> sizes;
    for (const auto& [rel, bytes] : weights) keys.push_back("@model_path/" + rel);
    for (const auto& k : keys) key_ptrs.push_back(k.c_str());
    for (const auto& [rel, bytes] : weights) data.push_back(bytes.data()), sizes.push_back(bytes.size());
    ane_error e{};
    ApiHandle m = ane_model_create(mil.data(), mil.size(), int(keys.size()), key_ptrs.data(), data.data(), sizes.data(), &e);
    if (!m) error = from_c(e);
    return m;
  }
  std::string model_id(ApiHandle model) override {
    char id[512] = "";
    ane_model_id(model, id, sizeof id);
    return id;
  }
  bool compile(ApiHandle m, unsigned qos, ApiError& error) override {
    return call(error, [&](ane_error* e) { return ane_model_compile(m, qos, e); });
  }
  bool load(ApiHandle m, unsigned qos, ApiError& error) override {
    return call(error, [&](ane_error* e) { return ane_model_load(m, qos, e); });
  }
  void unload(ApiHandle m, unsigned qos) override { ane_model_unload(m, qos); }
  ApiHandle create_surface(size_t bytes, ApiError& error) override {
    ane_error e{};
    ApiHandle s = ane_surface_create(bytes, &e);
    if (!s) error = from_c(e);
    return s;
  }
  void* lock(ApiHandle s, bool read_only) override { return ane_surface_lock(s, read_only); }
  void unlock(ApiHandle s, bool read_only) override { ane_surface_unlock(s, read_only); }
  ApiHandle create_request(const std::vector<ApiHandle>& inputs, ApiHandle output, ApiError& error) override {
    ane_error e{};
    ApiHandle r = ane_request_create(inputs.data(), int(inputs.size()), output, &e);
    if (!r) error = from_c(e);
    return r;
  }
  bool evaluate(ApiHandle m, ApiHandle request, unsigned qos, ApiError& error) override {
    return call(error, [&](ane_error* e) { return ane_model_evaluate(m, request, qos, e); });
  }
  void release(ApiHandle h) override { ane_release(h); }

 private:
  template <typename F>
  static bool call(ApiError& error, F&& f) {
    ane_error e{};
    bool ok = f(&e) != 0;
    if (!ok) error = from_c(e);
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
