#include "telemetry/tui.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/terminal_text.h"
#include "telemetry/tui_log.h"

namespace anetrain {

namespace {

std::string fmt(const char* f, double v) { return format_number(f, v); }

double num(const nlohmann::json& j, const char* key, double dflt = NAN) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : dflt;
}

// Cuts a UTF-8 string to `cols` code points (one cell each for the text we show).
std::string fit(const std::string& s, int cols) {
  std::string out;
  int n = 0;
  for (size_t i = 0; i < s.size() && n < cols; ++n) {
    size_t len = 1;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0xF0) len = 4;
    else if (c >= 0xE0) len = 3;
    else if (c >= 0xC0) len = 2;
    out.append(s, i, std::min(len, s.size() - i));
    i += len;
  }
  return out;
}

// A sample's line breaks and tabs read best as spaces; every other control byte is escaped with
// the rest of the line.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return s;
}

// U+2800 + dot bits: column 0 rows 0–3 are bits 0,1,2,6; column 1 rows 0–3 are bits 3,4,5,7.
std::string braille(int bits) {
  const int cp = 0x2800 + bits;
  std::string s;
  s += char(0xE0 | (cp >> 12));
  s += char(0x80 | ((cp >> 6) & 0x3F));
  s += char(0x80 | (cp & 0x3F));
  return s;
}

std::vector<std::string> loss_chart(const RunView& v, int width, int height) {
  std::vector<std::string> lines;
  if (v.loss.empty()) {
    lines.push_back("(waiting for the first step)");
    while (int(lines.size()) < height) lines.emplace_back();
    return lines;
  }
  double lo = INFINITY, hi = -INFINITY;
  int64_t s0 = v.loss.front().first, s1 = v.loss.back().first;
  for (auto* series : {&v.loss, &v.val_loss})
    for (const auto& [s, y] : *series) lo = std::min(lo, y), hi = std::max(hi, y), s1 = std::max(s1, s);
  if (hi - lo < 1e-9) hi = lo + 1e-9;
  const int label = 8, W = std::max(4, width - label), H = std::max(2, height);
  std::vector<int> dots(size_t(W) * H, 0);
  std::vector<bool> val_cell(size_t(W) * H, false);
  auto place = [&](int64_t s, double y, int* cx, int* cy, int* dx, int* dy) {
    const double fx = s1 > s0 ? double(s - s0) / double(s1 - s0) : 0.0;
    const int px = std::clamp(int(std::lround(fx * (2 * W - 1))), 0, 2 * W - 1);
    const int py = std::clamp(int(std::lround((hi - y) / (hi - lo) * (4 * H - 1))), 0, 4 * H - 1);
    *cx = px / 2, *dx = px % 2, *cy = py / 4, *dy = py % 4;
  };
  static const int bit[2][4] = {{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}};
  for (const auto& [s, y] : v.loss) {
    int cx, cy, dx, dy;
    place(s, y, &cx, &cy, &dx, &dy);
    dots[size_t(cy) * W + cx] |= bit[dx][dy];
  }
  for (const auto& [s, y] : v.val_loss) {
    int cx, cy, dx, dy;
    place(s, y, &cx, &cy, &dx, &dy);
    val_cell[size_t(cy) * W + cx] = true;
  }
  for (int r = 0; r < H; ++r) {
    std::string l = r == 0 ? fmt("%7.3f ", hi) : r == H - 1 ? fmt("%7.3f ", lo) : std::string(label, ' ');
    for (int c = 0; c < W; ++c) {
      const size_t i = size_t(r) * W + c;
      l += val_cell[i] ? std::string("\xE2\x97\x8F") : dots[i] ? braille(dots[i]) : std::string(" ");  // ● U+25CF
    }
    lines.push_back(l);
  }
  return lines;
}

// Below the five lines at the top, the chart and the log share what the sample (2 lines), the
// dashboard's line and the footer leave; the log gets two fifths once there is room for it.
int log_block_rows(int rows) {
  const int shared = std::max(rows, 8) - 9;
  return shared >= 10 ? shared * 2 / 5 : 0;
}

}  // namespace

int tui_log_rows(int rows) { return std::max(0, log_block_rows(rows) - 1); }

std::vector<std::string> render_tui(const RunView& v, const std::string& run, int cols, int rows, const TuiPanel& panel) {
  cols = std::max(cols, 20);
  rows = std::max(rows, 8);
  std::vector<std::string> out;
  const nlohmann::json& st = v.start;
  const nlohmann::json& opt = st.is_object() && st.contains("options") ? st["options"] : nlohmann::json::object();
  std::string head = "anetrain " + run;
  head += v.status.empty() ? (st.is_null() || st.empty() ? "  [waiting]" : "  [training]") : "  [" + v.status + "]";
  if (opt.contains("model") && opt["model"].is_string()) head += "  model " + opt["model"].get<std::string>();
  if (!std::isnan(num(st, "params"))) head += fmt(" (%.1fM params)", num(st, "params") / 1e6);
  for (const char* k : {"backend", "precision"})
    if (st.is_object() && st.contains(k) && st[k].is_string()) head += "  " + st[k].get<std::string>();
  if (!std::isnan(num(st, "threads"))) head += fmt("  %.0f threads", num(st, "threads"));
  if (st.is_object() && st.contains("cpu") && st["cpu"].is_string()) head += "  " + st["cpu"].get<std::string>();
  out.push_back(head);
  const nlohmann::json& s = v.last_step;
  std::string stats = "step " + fmt("%.0f", num(s, "step", 0));
  if (!std::isnan(num(opt, "steps"))) stats += fmt("/%.0f", num(opt, "steps"));
  stats += "  loss " + (std::isnan(num(s, "loss")) ? std::string("-") : fmt("%.4f", num(s, "loss")));
  if (!v.val_loss.empty()) {
    double best = INFINITY;
    for (const auto& p : v.val_loss) best = std::min(best, p.second);
    stats += fmt("  val %.4f", v.val_loss.back().second) + fmt(" (best %.4f)", best);
  }
  stats += fmt("  lr %.2e", num(s, "lr", 0)) + fmt("  grad %.3f", num(s, "grad_norm", 0));
  out.push_back(stats);
  out.push_back(fmt("%.0f tok/s", num(s, "tokens_per_s", 0)) + fmt("  %.1f GFLOP/s", num(s, "gflops", 0)) +
                fmt("  %.0f ms/step", num(s, "ms", 0)) + fmt("  RSS %.0f MB", num(s, "rss_mb", 0)) +
                (v.bad_lines ? fmt("  (%.0f bad telemetry lines skipped)", double(v.bad_lines)) : std::string()));
  std::string phases = "phases ms:";
  if (s.is_object() && s.contains("phase_ms") && s["phase_ms"].is_object())
    for (auto it = s["phase_ms"].begin(); it != s["phase_ms"].end(); ++it)
      if (it.value().is_number()) phases += " " + it.key() + fmt(" %.1f", it.value().get<double>());
  // Once the run has ended, its efficiency report says more than the last step's phases.
  out.push_back(v.efficiency.is_object() ? efficiency_text(v.efficiency) : phases);
  out.push_back("loss (dots: train, \xE2\x97\x8F: validation)");
  const int log_rows = tui_log_rows(rows);
  const int chart_rows = rows - int(out.size()) - 4 - log_block_rows(rows);
  for (auto& l : loss_chart(v, cols, std::max(2, chart_rows))) out.push_back(l);
  const nlohmann::json& sm = v.last_sample;
  if (sm.is_object() && sm.contains("greedy") && sm["greedy"].is_string()) {
    out.push_back(fmt("sample at step %.0f (greedy):", num(sm, "step", 0)));
    const std::string text = one_line(sm.value("prompt", std::string()) + sm["greedy"].get<std::string>());
    out.push_back("  " + text);
  } else {
    out.push_back("no sample yet (train with --sample-every N -z TOKENIZER)");
    out.emplace_back();
  }
  if (log_rows > 0) {
    const int n = int(v.log.size());
    const int scroll = std::clamp(panel.log_scroll, 0, std::max(0, n - log_rows));
    out.push_back(scroll > 0 ? fmt("log (%.0f newer lines below; End follows the newest)", scroll) : "log");
    for (int i = std::max(0, n - scroll - log_rows), k = 0; k < log_rows; ++i, ++k)
      out.push_back(i < n - scroll ? "  " + one_line(v.log[size_t(i)]) : std::string());
  }
  out.push_back(panel.status);
  out.push_back(panel.controls ? "q quits  g sample now  p pause/resume  r restart  \xE2\x86\x91\xE2\x86\x93 PgUp PgDn scroll the log"
                               : "q quits");
  out.resize(size_t(rows));
  // Names, phases and samples all come from a file anyone may write: escaped here, once, so no
  // control sequence in them reaches the terminal (and a line break cannot split a row).
  for (auto& l : out) l = fit(terminal_safe(l, LineBreaks::escape), cols);
  return out;
}

}  // namespace anetrain
