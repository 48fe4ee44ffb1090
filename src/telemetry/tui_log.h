// The run's events as lines of text, for the log panel of `dashboard --tui` (and, written the same
// way by web/log.js, the web page's): steps, evaluations, samples, checkpoints, warnings, compiled
// programs, starts, resumes, ends and the efficiency report, each prefixed with its local time of day. Text from the file is not escaped
// here; whoever draws it does (render_tui: terminal_safe).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace anetrain {

// "" for an event the log does not show (or one without the fields it needs).
std::string event_log_line(const nlohmann::json& event);

// An `efficiency` event in one line: the shares of wall time, then the utilisation or why none
// is claimed.
std::string efficiency_text(const nlohmann::json& event);

// One number in a printf format ("%.4f"), as the terminal view and its log lines show numbers.
std::string format_number(const char* printf_format, double v);

}  // namespace anetrain
