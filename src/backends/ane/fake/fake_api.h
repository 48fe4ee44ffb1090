// The fake AppleNeuralEngine.framework (fake_api.cpp) and how to make it misbehave, so that the
// runtime's failure paths — and a backend's answer to a program the hardware refuses — are
// tested without a Mac.
//
// In code: make_fake_api(FakeOptions{...}, census). From outside (the CLI's --backend ane-fake,
// the C API's "ane-fake"): the environment variable ANETRAIN_FAKE_ANE, read by make_fake_api(),
// holds directives separated by ';':
//
//   fail=STEP[,program=GLOB][,op=OP][,times=N]   STEP: compile | load | evaluate | surface | request
//       the matching calls fail: those of programs whose name matches GLOB (fnmatch: "attention_*",
//       "linear_64x64") and whose MIL uses operation OP ("reduce_sum", "softmax"); both given, both
//       must match; none, every call. times=N fails only the first N matching calls (default:
//       every one). surface and request take no program or op: surfaces and requests are not
//       tied to a program in the framework's API.
//   model_id=TEXT      every model's hexStringIdentifier is TEXT (empty: nil)
//   missing=NAME       the framework lacks the class or selector NAME (repeatable)
//   os=TEXT            the macOS version the fake reports
//
// e.g. ANETRAIN_FAKE_ANE='fail=compile,op=reduce_sum; fail=evaluate,program=ffn_fwd,times=1'.
// A malformed value is an error, never ignored.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/ane/runtime/private_api.h"

namespace anetrain::ane {

enum class FakeStep { compile, load, evaluate, surface, request };

struct FakeFault {
  FakeStep step = FakeStep::compile;
  std::string program;  // fnmatch glob on the program's name; "" = any
  std::string op;       // a MIL operation the program uses; "" = any
  int times = -1;       // how many matching calls fail; -1 = every one
};

struct FakeOptions {
  std::vector<FakeFault> faults;
  std::optional<std::string> model_id;  // every model's hexStringIdentifier ("" = nil)
  std::vector<std::string> missing;     // classes and selectors the framework lacks
  std::string os_version = "Version 0 (the fake framework: no Neural Engine here)";
  // The framework's NSTemporaryDirectory(). Empty: a fresh folder the fake makes and removes.
  std::string temp_dir;
  // The chip the fake claims to run on, for tests of the runtime's peak lookup; code only (no
  // directive), so `--backend ane-fake` never claims a chip. Empty: none, no utilisation claimed.
  std::string chip;

  static FakeOptions parse(const std::string& spec);  // the ANETRAIN_FAKE_ANE syntax; throws on errors
  static FakeOptions from_environment();              // parse(getenv("ANETRAIN_FAKE_ANE")), or defaults
};

// What the fake holds and has done, shared with the test that made it: leaks show as live
// objects after the runtime has cleaned up.
struct FakeCensus {
  int models = 0, surfaces = 0, requests = 0;  // live (created, not released)
  int loaded = 0;                              // models loaded and not unloaded
  int compiles = 0, loads = 0, evaluations = 0;  // calls, failed ones included
  int injected_failures = 0;                   // failures the options caused
};

std::unique_ptr<PrivateApi> make_fake_api(FakeOptions options, std::shared_ptr<FakeCensus> census = nullptr);
std::unique_ptr<PrivateApi> make_fake_api();  // configured by ANETRAIN_FAKE_ANE

// Whether `fault` applies to a program, by its name and the operations its MIL uses (helpers of
// the fake, exposed for tests).
bool fake_fault_matches(const FakeFault& fault, const std::string& program, const std::vector<std::string>& ops);

}  // namespace anetrain::ane
