// A run's telemetry.jsonl read back as one row per optimizer step: the `step` event's numbers
// (nested objects flattened with dots: `phase_ms.forward`), with the `eval` at that step merged
// in, the compiles of `programs` events in the row of their step (those before the first step in
// step 1's: programs.compiles, programs.compile_ms, programs.load_ms) and the end-of-run
// `efficiency` event in the last step's (efficiency.shares.compute, ...). A resumed run's telemetry holds the steps after its checkpoint twice (the first attempt,
// then the resumed one): a `run_start` that resumes from step k drops the rows past k, so each
// step keeps the values of the weights that went on. Lines that are not JSON objects (a line cut
// by a crash, a hand edit) are skipped and reported, never fatal.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace anetrain {

struct MetricsTable {
  std::vector<std::string> columns;  // "step" first, then in order of first appearance
  std::map<int64_t, std::map<std::string, std::optional<double>>> rows;  // by step; nullopt = null
  std::vector<std::string> warnings;                                     // "path:line: why"
};

// `run` is a run directory or a telemetry.jsonl file.
MetricsTable read_metrics(const std::string& run);

// Comma-separated, a header line, one line per step; empty cells for null or absent values.
std::string metrics_csv(const MetricsTable& t);

}  // namespace anetrain
