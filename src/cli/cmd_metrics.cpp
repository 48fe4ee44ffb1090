// `anetrain metrics RUN [--csv] [-o FILE]`: a run's telemetry as a table, one row per optimizer
// step and one column per metric (loss, lr, grad_norm, tokens/s, phase times, memory, val_loss,
// ...), so a run can be plotted in any spreadsheet or notebook. Works on a finished run and on one
// still training (it reads what has been written so far).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "telemetry/metrics.h"

namespace anetrain {

void add_metrics_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("metrics", "A run's telemetry as CSV: one row per step, one column per metric");
  struct Options {
    std::string dir, out;
    bool csv = true;
  };
  const auto o = std::make_shared<Options>();
  cmd->add_option("run", o->dir, "Run directory (or its telemetry.jsonl)")->required();
  cmd->add_flag("--csv", o->csv, "Comma-separated values (the format this build writes)");
  cmd->add_option("-o,--output", o->out, "Write to FILE instead of stdout");
  cmd->callback([&run, o] {
    run = [o] {
      // RUN is the telemetry file itself or the run directory holding it.
      if (!o->out.empty()) refuse_output_over_input({o->out}, {o->dir, (std::filesystem::path(o->dir) / "telemetry.jsonl").string()});
      const MetricsTable t = read_metrics(o->dir);
      for (const std::string& w : t.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
      const std::string text = metrics_csv(t);
      if (o->out.empty()) {
        // A full disk behind `> file` is as much a failure as one behind -o.
        if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
          fail(std::string("standard output: write failed: ") + std::strerror(errno));
      } else {
        AtomicFile f(o->out);
        f.write(text.data(), text.size());
        f.commit();
        std::fprintf(stderr, "wrote %s: %zu steps, %zu columns\n", o->out.c_str(), t.rows.size(), t.columns.size());
      }
      return 0;
    };
  });
}

}  // namespace anetrain
