#include "core/json_file.h"

#include "core/error.h"

namespace anetrain {

nlohmann::json parse_json_file(std::istream& in, const std::string& path, const std::string& what) {
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    fail_at(path, e.byte, "invalid JSON in " + what + ": " + e.what());
  } catch (const nlohmann::json::exception& e) {
    fail(path + ": unreadable " + what + ": " + e.what());
  }
}

}  // namespace anetrain
