#include "telemetry/tui_log.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace anetrain {

std::string format_number(const char* printf_format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_format, v);
  return buf;
}

namespace {

std::string fmt(const char* f, double v) { return format_number(f, v); }

bool has_num(const nlohmann::json& j, const char* key) { return j.contains(key) && j[key].is_number(); }
double num(const nlohmann::json& j, const char* key) { return has_num(j, key) ? j[key].get<double>() : NAN; }
std::string str(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}
// A value that may be null (a non-finite loss is written as null): "-" then.
std::string maybe(const nlohmann::json& j, const char* key, const char* f) {
  return has_num(j, key) ? fmt(f, j[key].get<double>()) : std::string("-");
}

std::string clock_of(const nlohmann::json& ev) {
  if (!has_num(ev, "time")) return "--:--:-- ";
  const std::time_t t = std::time_t(ev["time"].get<double>());
  std::tm tm {};
  if (!::localtime_r(&t, &tm)) return "--:--:-- ";
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S ", &tm);
  return buf;
}

std::string body(const nlohmann::json& ev, const std::string& event) {
  const std::string at = has_num(ev, "step") ? fmt("step %.0f: ", num(ev, "step")) : std::string();
  if (event == "run_start") {
    const double from = num(ev, "resumed_from_step");
    if (from > 0) return fmt("resumed from step %.0f", from);
    const nlohmann::json& o = ev.contains("options") && ev["options"].is_object() ? ev["options"] : nlohmann::json::object();
    return "started: " + str(o, "model") + (ev.contains("backend") ? " on " + str(ev, "backend") : std::string());
  }
  if (event == "step") {
    if (!has_num(ev, "step")) return "";
    std::string s = fmt("step %.0f", num(ev, "step")) + "  loss " + maybe(ev, "loss", "%.4f") + "  lr " +
                    maybe(ev, "lr", "%.2e") + "  grad " + maybe(ev, "grad_norm", "%.3f") + "  " + maybe(ev, "ms", "%.1f") + " ms";
    if (ev.value("skipped", false)) s += "  skipped";
    return s;
  }
  if (event == "eval") return at + "val loss " + maybe(ev, "val_loss", "%.4f") + " (best " + maybe(ev, "best_val", "%.4f") + ")";
  if (event == "sample") return at + "sample: " + str(ev, "prompt") + str(ev, "greedy");
  if (event == "checkpoint") return at + "checkpoint " + str(ev, "path");
  if (event == "budget")
    return at + maybe(ev, "ms_per_step", "%.1f") + " ms/step does not fit " + maybe(ev, "time_budget_s", "%g") + " s; " +
           maybe(ev, "steps", "%.0f") + " steps";
  if (event == "nonfinite")
    return at + "non-finite loss or gradient (" + maybe(ev, "consecutive", "%.0f") + " in a row, " +
           maybe(ev, "total", "%.0f") + " in all)";
  if (event == "overflow") return at + "fp16 overflow, loss scale now " + maybe(ev, "loss_scale", "%g");
  if (event == "ane_fallback")
    return at + "the Neural Engine rejected " + str(ev, "program") + "; the " + str(ev, "kernel") + " stage runs on the CPU";
  if (event == "programs")
    return at + "compiled " + maybe(ev, "compiles", "%.0f") + " programs in " + maybe(ev, "compile_ms", "%.1f") +
           " ms (load " + maybe(ev, "load_ms", "%.1f") + " ms)";
  if (event == "efficiency") return at + efficiency_text(ev);
  if (event == "warning") return at + "warning: " + str(ev, "text");
  if (event == "run_end") return "ended at step " + maybe(ev, "step", "%.0f") + ": " + str(ev, "status");
  return "";
}

}  // namespace

std::string efficiency_text(const nlohmann::json& ev) {
  const nlohmann::json& sh = ev.contains("shares") && ev["shares"].is_object() ? ev["shares"] : nlohmann::json::object();
  auto pct = [&](const char* k) { return has_num(sh, k) ? fmt("%.1f%%", 100 * sh[k].get<double>()) : std::string("-"); };
  std::string s = "efficiency: accelerator " + pct("compute") + ", compile " + pct("compile") + ", I/O " + pct("io") +
                  ", CPU " + pct("cpu") + ", other " + pct("other") + "; ";
  if (has_num(ev, "utilisation"))
    return s + "utilisation " + fmt("%.1f%%", 100 * num(ev, "utilisation")) + " of " + maybe(ev, "peak_gflops", "%.0f") +
           " GFLOP/s";
  return s + (str(ev, "peak_source").empty() ? "no utilisation claimed" : str(ev, "peak_source"));
}

std::string event_log_line(const nlohmann::json& event) {
  if (!event.is_object() || !event.contains("event") || !event["event"].is_string()) return "";
  const std::string text = body(event, event["event"].get<std::string>());
  return text.empty() ? text : clock_of(event) + text;
}

}  // namespace anetrain
