// A JSON document read from a file, with the errors every reader of one gives: the file's path,
// the byte where parsing stopped, and what the file was meant to be.
#pragma once
#include <istream>
#include <string>

#include <nlohmann/json.hpp>

namespace anetrain {

// Parses all of `in` (opened from `path`); `what` names the document in errors ("model config",
// "config.json", "shard index"). Throws Error "PATH: at byte N: invalid JSON in WHAT: <reason>".
nlohmann::json parse_json_file(std::istream& in, const std::string& path, const std::string& what);

}  // namespace anetrain
