// Warnings from code below the CLI (a checkpoint folder left in place, an unreadable checkpoint
// skipped) go to whoever runs it: the CLI prints them on stderr, a library session records them
// in its telemetry instead, because a library must not write to a program's terminal.
#pragma once
#include <functional>
#include <string>

namespace anetrain {

using WarningSink = std::function<void(const std::string&)>;

// To this thread's sink when one is installed, else to stderr ("anetrain: warning: …").
void warn(const std::string& text);

// Installs a sink for this thread while the object lives (nests: the previous one comes back).
class WarningScope {
 public:
  explicit WarningScope(WarningSink sink);
  ~WarningScope();
  WarningScope(const WarningScope&) = delete;
  WarningScope& operator=(const WarningScope&) = delete;

 private:
  WarningSink previous_;
};

}  // namespace anetrain
