// The fake framework's options: ANETRAIN_FAKE_ANE's syntax (documented in fake_api.h) and which
// program a fault applies to.
#include <fnmatch.h>

#include <algorithm>
#include <cstdlib>

#include "backends/ane/fake/fake_api.h"
#include "core/error.h"

namespace anetrain::ane {

namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\n"), b = s.find_last_not_of(" \t\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == sep) {
      parts.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  return parts;
}

[[noreturn]] void bad(const std::string& directive, const std::string& why) {
  fail("ANETRAIN_FAKE_ANE: '" + directive + "': " + why +
       " (directives: fail=compile|load|evaluate|surface|request[,program=GLOB][,op=OP][,times=N]; model_id=TEXT; "
       "missing=NAME; os=TEXT; separated by ';')");
}

FakeStep step_named(const std::string& directive, const std::string& name) {
  if (name == "compile") return FakeStep::compile;
  if (name == "load") return FakeStep::load;
  if (name == "evaluate") return FakeStep::evaluate;
  if (name == "surface") return FakeStep::surface;
  if (name == "request") return FakeStep::request;
  bad(directive, "unknown step '" + name + "'");
}

FakeFault parse_fault(const std::string& directive, const std::string& value) {
  const std::vector<std::string> fields = split(value, ',');
  FakeFault f;
  f.step = step_named(directive, fields[0]);
  for (size_t i = 1; i < fields.size(); ++i) {
    const size_t eq = fields[i].find('=');
    const std::string key = trim(fields[i].substr(0, eq)), v = eq == std::string::npos ? "" : trim(fields[i].substr(eq + 1));
    if (eq == std::string::npos || v.empty()) bad(directive, "'" + fields[i] + "' needs a value");
    if (key == "program") f.program = v;
    else if (key == "op") f.op = v;
    else if (key == "times") {
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (*end || n < 1 || n > 1000000) bad(directive, "times must be a positive count");
      f.times = int(n);
    } else bad(directive, "unknown field '" + key + "'");
  }
  if ((f.step == FakeStep::surface || f.step == FakeStep::request) && (!f.program.empty() || !f.op.empty()))
    bad(directive, "surface and request failures cannot be tied to a program");
  return f;
}

}  // namespace

FakeOptions FakeOptions::parse(const std::string& spec) {
  FakeOptions o;
  for (const std::string& directive : split(spec, ';')) {
    if (directive.empty()) continue;
    const size_t eq = directive.find('=');
    if (eq == std::string::npos) bad(directive, "expected NAME=VALUE");
    const std::string key = trim(directive.substr(0, eq)), value = trim(directive.substr(eq + 1));
    if (key == "fail") o.faults.push_back(parse_fault(directive, value));
    else if (key == "model_id") o.model_id = value;
    else if (key == "missing" && !value.empty()) o.missing.push_back(value);
    else if (key == "os" && !value.empty()) o.os_version = value;
    else bad(directive, "unknown directive or empty value");
  }
  return o;
}

FakeOptions FakeOptions::from_environment() {
  const char* spec = std::getenv("ANETRAIN_FAKE_ANE");
  return spec ? parse(spec) : FakeOptions{};
}

bool fake_fault_matches(const FakeFault& fault, const std::string& program, const std::vector<std::string>& ops) {
  if (!fault.program.empty() && ::fnmatch(fault.program.c_str(), program.c_str(), 0) != 0) return false;
  return fault.op.empty() || std::find(ops.begin(), ops.end(), fault.op) != ops.end();
}

std::unique_ptr<PrivateApi> make_fake_api() { return make_fake_api(FakeOptions::from_environment()); }

}  // namespace anetrain::ane
