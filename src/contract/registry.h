// Backends by name. One table (backends/registry.cpp) lists every backend this build knows, one
// line each, guarded by the CMake option that builds it; everything here reads that table.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "contract/backend.h"
#include "core/dtype.h"

namespace anetrain {

// What a run asks of the backend it makes. Threads are not here: OpenMP's thread count belongs
// to the process, which sets it before any backend runs.
struct BackendOptions {
  Precision precision = Precision::fp32;  // bf16: mixed precision, for a backend that offers it
};

struct BackendEntry {
  std::string_view name;
  // In backend_names() (and so in "available: …" and the tests that iterate every backend);
  // unlisted names are variants for tests and CI, or backends with a hardware of their own.
  bool listed = false;
  // Makes it; nullptr when this build leaves it out (then `absent` says why and what to use).
  std::unique_ptr<Backend> (*make)(const BackendOptions&) = nullptr;
  std::string_view absent = {};
  // Offers bf16 mixed precision besides fp32; every backend takes fp32, meaning "its own".
  bool offers_bf16 = false;
  // The precision a run gets when it names none; nullptr: fp32.
  Precision (*preferred_precision)() = nullptr;
  // A name only tests use, for what users ask with these options; `train` refuses it by them.
  std::string_view users_ask = {};
};

// Every backend this build knows, built or not, in the order backend_names() lists them.
const std::vector<BackendEntry>& backend_table();
// The table's line for `name`, or nullptr.
const BackendEntry* find_backend(std::string_view name);
// The listed backends built into this binary.
std::vector<std::string> backend_names();
// A run's precision on backend `name` when it asks for none.
Precision preferred_precision(const std::string& name);
// The instruction set this machine's matrix products dispatch to ("avx512_core_bf16", ...;
// oneDNN's name, as the cpu backend uses it), which runs and benchmarks record with their timings.
std::string matrix_isa();

// Throws an Error listing backend_names() when the name is unknown, and one saying what to use
// instead for a backend not built into this binary or a precision it does not offer.
std::unique_ptr<Backend> make_backend(const std::string& name, const BackendOptions& options = {});
inline std::unique_ptr<Backend> make_backend(const std::string& name, Precision precision) {
  return make_backend(name, BackendOptions{precision});
}

}  // namespace anetrain
