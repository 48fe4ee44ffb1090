'use strict';
// The log panel: every event as one line of text, written as `dashboard --tui` writes it
// (src/telemetry/tui_log.cpp), so the two read alike; app.js keeps the newest 2000 lines per run.
const pad2 = n => String(n).padStart(2, '0');
const fixed = (v, d) => (num(v) === null ? '-' : v.toFixed(d));
const exp2 = v => (num(v) === null ? '-' : v.toExponential(2).replace(/e([+-])(\d)$/, 'e$10$2'));
function clockOf(ev) {
  if (num(ev.time) === null) return '--:--:-- ';
  const d = new Date(ev.time * 1000);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} `;
}
function logText(ev) {
  const at = num(ev.step) !== null ? `step ${ev.step}: ` : '';
  const str = v => (typeof v === 'string' ? v : '');
  switch (ev.event) {
    case 'run_start': {
      const from = num(ev.resumed_from_step) || 0;
      if (from > 0) return `resumed from step ${from}`;
      return `started: ${str((ev.options || {}).model)}${'backend' in ev ? ' on ' + str(ev.backend) : ''}`;
    }
    case 'step':
      if (num(ev.step) === null) return '';
      return `step ${ev.step}  loss ${fixed(ev.loss, 4)}  lr ${exp2(ev.lr)}  grad ${fixed(ev.grad_norm, 3)}  ${fixed(ev.ms, 1)} ms` +
        (ev.skipped === true ? '  skipped' : '');
    case 'eval': return `${at}val loss ${fixed(ev.val_loss, 4)} (best ${fixed(ev.best_val, 4)})`;
    case 'sample': return `${at}sample: ${str(ev.prompt)}${str(ev.greedy)}`.replace(/[\n\r\t]/g, ' ');
    case 'checkpoint': return `${at}checkpoint ${str(ev.path)}`;
    case 'budget': return `${at}${fixed(ev.ms_per_step, 1)} ms/step does not fit ${ev.time_budget_s} s; ${ev.steps} steps`;
    case 'nonfinite': return `${at}non-finite loss or gradient (${ev.consecutive} in a row, ${ev.total} in all)`;
    case 'overflow': return `${at}fp16 overflow, loss scale now ${ev.loss_scale}`;
    case 'ane_fallback': return `${at}the Neural Engine rejected ${str(ev.program)}; the ${str(ev.kernel)} stage runs on the CPU`;
    case 'programs': return `${at}compiled ${ev.compiles} programs in ${fixed(ev.compile_ms, 1)} ms (load ${fixed(ev.load_ms, 1)} ms)`;
    case 'efficiency': return `${at}${efficiencyText(ev)}`;
    case 'warning': return `${at}warning: ${str(ev.text)}`;
    case 'run_end': return `ended at step ${num(ev.step) === null ? '-' : ev.step}: ${str(ev.status)}`;
    default: return '';
  }
}

// An efficiency event in one line, as the terminal view writes it (efficiency_text).
function efficiencyText(ev) {
  const sh = ev.shares || {};
  const pct = k => (num(sh[k]) === null ? '-' : `${(100 * sh[k]).toFixed(1)}%`);
  const s = `efficiency: accelerator ${pct('compute')}, compile ${pct('compile')}, I/O ${pct('io')}, CPU ${pct('cpu')}, other ${pct('other')}; `;
  if (num(ev.utilisation) !== null) return `${s}utilisation ${(100 * ev.utilisation).toFixed(1)}% of ${fixed(ev.peak_gflops, 0)} GFLOP/s`;
  return s + (typeof ev.peak_source === 'string' && ev.peak_source ? ev.peak_source : 'no utilisation claimed');
}

// Oldest first, the runs interleaved by time. A reader at the bottom follows the newest lines;
// one who scrolled up keeps their place.
let logDrawn = -1;
function renderLog() {
  if (logDrawn === state.logVersion) return;
  logDrawn = state.logVersion;
  const box = $('log');
  const following = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
  const items = state.runs.flatMap(r => r.log.map(l => ({ r, l }))).sort((a, b) => a.l.time - b.l.time);
  const many = state.runs.length > 1;
  box.textContent = '';
  const frag = document.createDocumentFragment();
  for (const { r, l } of items) frag.append(el('div', { class: 'line' }, many ? `${l.text.slice(0, 9)}[${r.name}] ${l.text.slice(9)}` : l.text));
  box.append(frag);
  box.dataset.lines = String(items.length);
  if (following) box.scrollTop = box.scrollHeight;
}
