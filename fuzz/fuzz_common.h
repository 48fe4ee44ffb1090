// Shared by the fuzz targets. The parsers take paths (they mmap), so each input is written to a
// file in a scratch directory private to this process: $ANETRAIN_FUZZ_TMP, else /dev/shm, else
// $TMPDIR or /tmp. The directory holds nothing else, so e.g. the tokenizer.json loader never
// finds a tokenizer_config.json beside its input. It is removed when the process exits normally.
//
// Contract of every target: anetrain::Error is the expected answer to a bad file and is caught;
// anything else that escapes (another exception type, a sanitizer report, a crash, a hang) is a
// finding and is left to libFuzzer to report.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace anetrain_fuzz {

inline const std::string& scratch_dir() {
  // Never destroyed: the atexit handler below runs after static destructors registered later.
  static const std::string& dir = *new std::string([] {
    std::string base;
    if (const char* e = std::getenv("ANETRAIN_FUZZ_TMP"); e && *e) base = e;
    else if (::access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    else if (const char* t = std::getenv("TMPDIR"); t && *t) base = t;
    else base = "/tmp";
    std::string tmpl = base + "/anetrain-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      std::perror(("anetrain fuzz: cannot create a scratch directory under " + base).c_str());
      std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return tmpl;
  }());
  return dir;
}

// Writes the input to <scratch>/<name> (replacing the previous one) and returns the path.
inline std::string write_input(const char* name, const uint8_t* data, size_t size) {
  std::string path = scratch_dir() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(("anetrain fuzz: cannot write " + path).c_str());
    std::abort();  // an environment problem, not a parser finding; stop loudly
  }
  return path;
}

}  // namespace anetrain_fuzz
