#include "core/error.h"

namespace anetrain {

void fail_at(const std::string& path, uint64_t offset, const std::string& msg) {
  throw Error(path + ": at byte " + std::to_string(offset) + ": " + msg);
}

void fail(const std::string& msg) { throw Error(msg); }

}  // namespace anetrain
