// Helpers shared by the bench commands that run peers as separate processes.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

namespace anetrain {

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// One shell word, whatever `s` holds (single quotes, each ' written as '\'').
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace anetrain
