// The terminal view of a run (`anetrain dashboard --tui RUN`), as a pure function from what the
// telemetry says and the terminal's size to the lines to draw: the run's configuration, the
// latest step's numbers and phases, the loss curve in braille dots (2×4 per character cell) with
// the validation losses marked, the latest sample, the run's events as a scrollable log and a line
// of the dashboard's own (what a key did). Plain text plus UTF-8; no colours needed.
// Text taken from the telemetry is drawn with its control characters escaped (terminal_safe).
#pragma once
#include <string>
#include <vector>

#include "telemetry/run_watch.h"

namespace anetrain {

struct TuiPanel {
  int log_scroll = 0;     // log lines hidden below the panel: 0 follows the newest
  std::string status;     // the dashboard's line: what a key did, or a question it asks
  bool controls = false;  // the footer names g, p, r and the scroll keys besides q
};

// Exactly `rows` lines, none wider than `cols` characters (terminal cells).
std::vector<std::string> render_tui(const RunView& v, const std::string& run, int cols, int rows,
                                    const TuiPanel& panel = {});

// Lines of the log panel at this terminal height (0 when it is too small for one): a page.
int tui_log_rows(int rows);

}  // namespace anetrain
