// The terminal view of a run (`anetrain dashboard --tui RUN`), as a pure function from what the
// telemetry says and the terminal's size to the lines to draw: the run's configuration, the
// latest step's numbers and phases, the loss curve in braille dots (2×4 per character cell) with
// the validation losses marked, and the latest sample. Plain text plus UTF-8; no colours needed.
// Text taken from the telemetry is drawn with its control characters escaped (terminal_safe).
#pragma once
#include <string>
#include <vector>

#include "telemetry/run_watch.h"

namespace anetrain {

// Exactly `rows` lines, none wider than `cols` characters (terminal cells).
std::vector<std::string> render_tui(const RunView& v, const std::string& run, int cols, int rows);

}  // namespace anetrain
