#include "telemetry/metrics.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace anetrain {

namespace {

using Row = std::map<std::string, std::optional<double>>;

// Numbers, booleans (1/0) and nulls of an event, nested objects joined with dots; strings and
// arrays have no place in a numeric table and are left out.
void flatten(const nlohmann::ordered_json& j, const std::string& prefix, Row& row, std::vector<std::string>& order,
             std::set<std::string>& seen) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    const nlohmann::ordered_json& v = it.value();
    if (v.is_object()) {
      flatten(v, key, row, order, seen);
      continue;
    }
    std::optional<double> value;
    if (v.is_number()) value = v.get<double>();
    else if (v.is_boolean()) value = v.get<bool>() ? 1.0 : 0.0;
    else if (!v.is_null()) continue;
    row[key] = value;
    if (seen.insert(key).second) order.push_back(key);
  }
}

}  // namespace

MetricsTable read_metrics(const std::string& run) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string path = fs::is_directory(run, ec) ? (fs::path(run) / "telemetry.jsonl").string() : run;
  std::ifstream in(path);
  if (!in) fail(path + ": cannot read (is " + run + " a training run directory?)");
  MetricsTable t;
  std::set<std::string> seen = {"step"};
  t.columns.push_back("step");
  nlohmann::ordered_json pending_programs = nlohmann::ordered_json::object();  // compiles not yet in a row
  auto flush_programs = [&](Row& row) {
    if (pending_programs.empty()) return;
    nlohmann::ordered_json sums = nlohmann::ordered_json::object();
    for (auto it = pending_programs.begin(); it != pending_programs.end(); ++it) {
      const auto had = row.find("programs." + it.key());
      sums[it.key()] = it.value().get<double>() + (had != row.end() && had->second ? *had->second : 0.0);
    }
    flatten(sums, "programs", row, t.columns, seen);
    pending_programs = nlohmann::ordered_json::object();
  };
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    nlohmann::ordered_json j;
    try {
      j = nlohmann::ordered_json::parse(line);
    } catch (const nlohmann::json::exception&) {
      t.warnings.push_back(path + ":" + std::to_string(n) + ": not JSON (skipped)");
      continue;
    }
    if (!j.is_object() || !j.contains("event") || !j["event"].is_string()) {
      t.warnings.push_back(path + ":" + std::to_string(n) + ": not a telemetry event (skipped)");
      continue;
    }
    const std::string event = j["event"].get<std::string>();
    if (event == "run_start") {
      const auto from = j.value("resumed_from_step", nlohmann::ordered_json(0));
      if (from.is_number_integer()) t.rows.erase(t.rows.upper_bound(from.get<int64_t>()), t.rows.end());
      continue;
    }
    if (event != "step" && event != "eval" && event != "programs" && event != "efficiency") continue;
    if (!j.contains("step") || !j["step"].is_number_integer()) {
      t.warnings.push_back(path + ":" + std::to_string(n) + ": " + event + " without an integer step (skipped)");
      continue;
    }
    const int64_t step = j["step"].get<int64_t>();
    if (event == "programs") {
      // Compiles land in the row of the step they happened in, or (before the first step) the next.
      for (const char* k : {"compiles", "compile_ms", "load_ms"})
        if (j.contains(k) && j[k].is_number()) pending_programs[k] = pending_programs.value(k, 0.0) + j[k].get<double>();
      if (t.rows.count(step)) flush_programs(t.rows[step]);
      continue;
    }
    if (event == "efficiency") {  // the end-of-run report joins the last step's row
      if (!t.rows.count(step)) continue;
      nlohmann::ordered_json fields = j;
      for (const char* k : {"event", "step", "time", "steps"}) fields.erase(k);
      flatten(fields, "efficiency", t.rows[step], t.columns, seen);
      continue;
    }
    nlohmann::ordered_json fields = j;
    fields.erase("event");
    fields.erase("step");
    if (event == "eval") fields.erase("time");  // the row keeps its step's time
    if (event == "step") t.rows[step].clear();  // a repeated step replaces the earlier one
    flatten(fields, "", t.rows[step], t.columns, seen);
    if (event == "step") flush_programs(t.rows[step]);
  }
  // Only the columns some remaining row has (an abandoned attempt's eval leaves none behind).
  std::vector<std::string> kept = {"step"};
  for (size_t c = 1; c < t.columns.size(); ++c)
    for (const auto& [step, row] : t.rows)
      if (row.count(t.columns[c])) {
        kept.push_back(t.columns[c]);
        break;
      }
  t.columns = std::move(kept);
  return t;
}

std::string metrics_csv(const MetricsTable& t) {
  std::string out;
  for (size_t c = 0; c < t.columns.size(); ++c) out += (c ? "," : "") + t.columns[c];
  out += "\n";
  char buf[32];
  for (const auto& [step, row] : t.rows) {
    out += std::to_string(step);
    for (size_t c = 1; c < t.columns.size(); ++c) {
      out += ",";
      auto it = row.find(t.columns[c]);
      if (it == row.end() || !it->second || !std::isfinite(*it->second)) continue;
      const double v = *it->second;
      // Counts stay exact integers, Unix times keep milliseconds, other values ten significant
      // digits (they were fp32).
      if (v == std::floor(v) && std::fabs(v) < 9e15) std::snprintf(buf, sizeof buf, "%.0f", v);
      else if (std::fabs(v) >= 1e6) std::snprintf(buf, sizeof buf, "%.3f", v);
      else std::snprintf(buf, sizeof buf, "%.10g", v);
      out += buf;
    }
    out += "\n";
  }
  return out;
}

}  // namespace anetrain
