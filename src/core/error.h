// Error type for everything a user can cause: bad files, bad flags, bad configs.
// Messages name the file and byte offset where one applies, plus a hint when there is a fix.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace anetrain {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// "path: at byte 1234: message" — the shape every parser error takes.
[[noreturn]] void fail_at(const std::string& path, uint64_t offset, const std::string& msg);
[[noreturn]] void fail(const std::string& msg);

}  // namespace anetrain
