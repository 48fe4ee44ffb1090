#include "core/warn.h"

#include <cstdio>

namespace anetrain {

namespace {
thread_local WarningSink t_sink;
}

void warn(const std::string& text) {
  if (t_sink) {
    t_sink(text);
    return;
  }
  std::fprintf(stderr, "anetrain: warning: %s\n", text.c_str());
}

WarningScope::WarningScope(WarningSink sink) : previous_(std::move(t_sink)) { t_sink = std::move(sink); }

WarningScope::~WarningScope() { t_sink = std::move(previous_); }

}  // namespace anetrain
