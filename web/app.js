'use strict';
// The dashboard: follows /api/stream (every run's telemetry events, history first, then live),
// keeps per-run series, and redraws at most twice a second. Event fields: docs/telemetry.md.

const PHASES = ['data', 'forward', 'backward', 'optimizer'];
const state = { runs: [], xMode: 'step', yLog: false, smooth: false, phaseRun: 0, dirty: true, connected: false, logVersion: 0 };
const $ = id => document.getElementById(id);
const charts = {};

function newRun(id, name) {
  return {
    id, name, color: RUN_COLORS[id % RUN_COLORS.length], start: null, t0: null, status: 'waiting for telemetry',
    missing: false, bad: 0, total: null, lastTime: null, fallbacks: 0, compiles: 0, efficiency: null,
    s: { step: [], time: [], loss: [], lr: [], gnorm: [], tps: [], gflops: [], accel: [], ms: [], rss: [], peak: [], cpu: [],
         power: [], powerParts: Object.create(null), scale: [], skipped: [],
         phase: { data: [], forward: [], backward: [], optimizer: [], classifier: [] },
         kernels: Object.create(null) },  // keyed by names from the file: no prototype to collide with
    e: { step: [], time: [], val: [] }, ckpts: [], best: null, samples: [], log: [],
  };
}

// A resumed run re-does the steps after its checkpoint: forget what came after it.
function truncate(r, k) {
  const s = r.s;
  let n = s.step.length;
  while (n > 0 && s.step[n - 1] > k) n--;
  const cut = a => { a.length = Math.min(a.length, n); };
  for (const key of Object.keys(s)) if (Array.isArray(s[key])) cut(s[key]);
  for (const a of Object.values(s.phase)) cut(a);
  for (const a of Object.values(s.kernels)) cut(a);
  for (const a of Object.values(s.powerParts)) cut(a);
  let m = r.e.step.length;
  while (m > 0 && r.e.step[m - 1] > k) m--;
  for (const a of Object.values(r.e)) a.length = m;
  r.ckpts = r.ckpts.filter(c => c.step <= k);
  r.samples = r.samples.filter(c => c.step <= k);
}

const num = v => (typeof v === 'number' && isFinite(v) ? v : null);

// The log panel's lines: web/log.js.
function logLine(r, ev) {
  const text = logText(ev);
  if (!text) return;
  r.log.push({ time: num(ev.time) || 0, text: clockOf(ev) + text });
  if (r.log.length > 2000) r.log.shift();
  state.logVersion += 1;
}

function apply(r, ev) {
  if (typeof ev.time === 'number') r.lastTime = ev.time;
  logLine(r, ev);
  switch (ev.event) {
    case 'run_start': {
      r.start = ev;
      if (r.t0 === null) r.t0 = ev.time;
      r.status = 'running';
      if (ev.options && num(ev.options.steps)) r.total = ev.options.steps;
      const from = num(ev.resumed_from_step) || 0;
      if (from > 0) truncate(r, from);
      break;
    }
    case 'step': {
      const step = num(ev.step);
      if (step === null) return;
      if (r.s.step.length && step <= r.s.step[r.s.step.length - 1]) truncate(r, step - 1);
      const s = r.s, i = s.step.length;
      s.step.push(step);
      s.time.push(ev.time - r.t0);
      s.loss.push(num(ev.loss));
      s.lr.push(num(ev.lr));
      s.gnorm.push(num(ev.grad_norm));
      s.tps.push(num(ev.tokens_per_s));
      s.gflops.push(num(ev.gflops));
      s.accel.push(num(ev.accelerator_gflops));
      s.ms.push(num(ev.ms));
      s.rss.push(num(ev.rss_mb));
      s.peak.push(num(ev.peak_rss_mb));
      s.cpu.push(num(ev.cpu_pct));
      s.power.push(num(ev.power_w));
      s.scale.push(num(ev.loss_scale));
      s.skipped.push(ev.skipped === true || ev.overflow === true);
      const ph = ev.phase_ms || {};
      for (const p of Object.keys(s.phase)) s.phase[p].push(num(ph[p]));
      for (const [name, k] of Object.entries(ev.kernels || {})) {
        if (!s.kernels[name]) s.kernels[name] = new Array(i).fill(null);
        s.kernels[name].push((num(k.eval_ms) || 0) + (num(k.io_ms) || 0));
      }
      for (const a of Object.values(s.kernels)) if (a.length < i + 1) a.push(null);
      for (const [name, w] of Object.entries(ev.power_parts || {})) {
        if (!s.powerParts[name]) s.powerParts[name] = new Array(i).fill(null);
        s.powerParts[name].push(num(w));
      }
      for (const a of Object.values(s.powerParts)) if (a.length < i + 1) a.push(null);
      break;
    }
    case 'eval':
      if (num(ev.step) === null || num(ev.val_loss) === null) return;
      r.e.step.push(ev.step);
      r.e.time.push(ev.time - r.t0);
      r.e.val.push(ev.val_loss);
      if (!r.best || ev.val_loss <= r.best.val) r.best = { step: ev.step, val: ev.val_loss, time: ev.time - r.t0 };
      break;
    case 'sample':
      r.samples.push(ev);
      if (r.samples.length > 20) r.samples.shift();
      break;
    case 'checkpoint':
      r.ckpts.push({ step: ev.step, time: ev.time - r.t0 });
      break;
    case 'budget':
      if (num(ev.steps)) r.total = ev.steps;
      break;
    case 'nonfinite':
      break;
    case 'overflow':
      break;
    case 'ane_fallback':
      r.fallbacks += 1;
      break;
    case 'programs':
      if (num(ev.compiles)) r.compiles += ev.compiles;
      break;
    case 'efficiency':
      r.efficiency = ev;
      break;
    case 'warning':
      break;
    case 'run_end':
      r.status = ev.status || 'ended';
      break;
    default:
      break;
  }
}

// ---------- series for the charts ----------

function xs(r, fromEval = false) {
  const src = fromEval ? r.e : r.s;
  return state.xMode === 'time' ? src.time : src.step;
}

function smoothed(values) {
  if (!state.smooth) return values;
  let ema = null;
  return values.map(v => (v === null ? null : (ema = ema === null ? v : 0.9 * ema + 0.1 * v)));
}

function line(label, color, extra = {}) {
  return Object.assign({ label, stroke: color, width: 1.5, spanGaps: true, value: (u, v) => fmtNum(v, 4) }, extra);
}
const dots = (label, color) => line(label, color, { paths: () => null, points: { show: true, space: 0, size: 7, fill: color } });

// One multi-run chart: per run, a table [x, ...ys] and its series.
function drawRuns(chart, name, perRun, opts = {}) {
  const tables = [], series = [{ label: state.xMode }];
  for (const r of state.runs) {
    for (const t of perRun(r)) {
      tables.push([t.x, t.y]);
      series.push(t.series);
    }
  }
  const key = [name, state.xMode, opts.log ? 'log' : 'lin', ...series.map(s => s.label)].join('|');
  const scales = { x: { time: false }, y: opts.log ? { distr: 3 } : { auto: true } };
  if (opts.y2) scales.y2 = { auto: true };
  const axes = [xAxis(state.xMode), { label: opts.yLabel || '', size: 60, values: yTicks }];
  if (opts.y2) axes.push({ scale: 'y2', side: 1, label: opts.y2, grid: { show: false }, size: 60, values: yTicks });
  chart.update({ key, series, scales, axes, hooks: opts.hooks }, joinTables(tables));
}

function renderCharts() {
  drawRuns(charts.loss, 'loss', r => [
    { x: xs(r), y: smoothed(r.s.loss), series: line(`${r.name} train`, r.color) },
    { x: xs(r, true), y: r.e.val, series: dots(`${r.name} val`, r.color) },
  ], { log: state.yLog, yLabel: 'loss', hooks: { draw: markerHook(lossMarkers) } });
  const el = $('loss-chart');
  el.dataset.points = String(state.runs.reduce((n, r) => n + r.s.loss.filter(v => v !== null).length, 0));
  el.dataset.runs = String(state.runs.filter(r => r.s.step.length > 0).length);

  drawRuns(charts.lr, 'lr', r => [{ x: xs(r), y: r.s.lr, series: line(r.name, r.color, { value: (u, v) => fmtNum(v) }) }],
    { yLabel: 'learning rate' });

  drawRuns(charts.gnorm, 'gnorm', r => {
    const clip = clipOf(r);
    return [
      { x: xs(r), y: r.s.gnorm, series: line(r.name, r.color) },
      { x: xs(r), y: r.s.gnorm.map(v => (clip && v !== null && v > clip ? v : null)), series: dots(`${r.name} clipped`, r.color) },
    ];
  }, { yLabel: 'L2 norm', hooks: { draw: hlineHook(() => clipOf(state.runs[0]), '#9ca3af') } });
  const clip0 = state.runs.length ? clipOf(state.runs[0]) : null;
  $('clip-note').textContent = clip0 ? `clipped to ${clip0} (dashed); dots: steps that were clipped` : '';

  drawRuns(charts.speed, 'speed', r => [
    { x: xs(r), y: r.s.tps, series: line(`${r.name} tokens/s`, r.color, { value: (u, v) => fmtNum(v) }) },
    { x: xs(r), y: r.s.gflops, series: line(`${r.name} GFLOP/s`, r.color, { scale: 'y2', dash: [5, 4], width: 1 }) },
  ], { yLabel: 'tokens/s', y2: 'GFLOP/s' });
  $('util-note').textContent = state.runs.map(r => utilText(r)).filter(Boolean).join(' · ');

  renderPhases();
  renderKernels();

  drawRuns(charts.mem, 'mem', r => [
    { x: xs(r), y: r.s.rss, series: line(`${r.name} RSS MB`, r.color, { value: (u, v) => fmtNum(v, 4) }) },
    { x: xs(r), y: r.s.cpu, series: line(`${r.name} CPU %`, r.color, { scale: 'y2', dash: [5, 4], width: 1 }) },
  ], { yLabel: 'resident MB', y2: 'CPU % (100 = one core)' });

  const withPower = state.runs.filter(r => r.s.power.some(v => v !== null));
  $('power-chart').hidden = withPower.length === 0;
  if (withPower.length) {
    drawRuns(charts.power, 'power', r => [
      { x: xs(r), y: r.s.power, series: line(`${r.name} W`, r.color) },
      ...Object.entries(r.s.powerParts).map(([name, a], k) => (
        { x: xs(r), y: a, series: line(`${r.name} ${name} W`, r.color, { dash: [2 + 3 * k, 3], width: 1 }) })),
    ], { yLabel: 'watts' });
  }
  $('power-note').textContent = state.runs.map(r => r.start && r.start.power_source
    ? `${r.name}: ${r.start.power_source}` : '').filter(Boolean).join(' · ') || 'Power: waiting for run_start.';

  const scaled = state.runs.some(r => r.s.scale.some(v => v !== null && v !== 1));
  const skipped = state.runs.reduce((n, r) => n + r.s.skipped.filter(Boolean).length, 0);
  $('scale-chart').hidden = !scaled && skipped === 0;
  if (scaled || skipped) {
    drawRuns(charts.scale, 'scale', r => [
      { x: xs(r), y: r.s.scale, series: line(`${r.name} loss scale`, r.color) },
      { x: xs(r), y: r.s.skipped.map((b, i) => (b ? r.s.scale[i] || 1 : null)), series: dots(`${r.name} skipped`, r.color) },
    ], { log: scaled, yLabel: 'loss scale' });
  }
  $('scale-note').textContent = scaled ? `fp16 backend: dynamic loss scale; ${skipped} skipped steps (dots)`
    : `fp32/bf16 arithmetic (no loss scaling); ${skipped} skipped (non-finite) steps`;
}

function clipOf(r) { return r && r.start && r.start.options && r.start.options.clip > 0 ? r.start.options.clip : null; }

function median(a) {
  const v = a.filter(x => x !== null).sort((p, q) => p - q);
  return v.length ? v[Math.floor(v.length / 2)] : null;
}
const recent = (a, n = 20) => a.slice(Math.max(0, a.length - n));

// The rate a run's peak applies to: the programs' on an accelerator, the whole step's on a CPU.
const onAccelerator = r => !!(r.start && r.start.matrix_peak_on === 'accelerator');
const peakRate = r => median(recent(onAccelerator(r) ? r.s.accel : r.s.gflops));

function utilText(r) {
  const peak = r.start && num(r.start.matrix_peak_gflops);
  const g = peakRate(r);
  const what = onAccelerator(r) ? 'GFLOP/s on the accelerator of its published peak' : 'GFLOP/s measured matrix peak';
  return peak && g ? `${r.name}: ${fmtNum(g)} of ${fmtNum(peak)} ${what} (${Math.round((100 * g) / peak)}%)` : '';
}

function lossMarkers() {
  const out = [];
  for (const r of state.runs) {
    for (const c of r.ckpts) out.push({ x: state.xMode === 'time' ? c.time : c.step, y: null, color: r.color, glyph: '▲' });
    if (r.best) out.push({ x: state.xMode === 'time' ? r.best.time : r.best.step, y: r.best.val, color: r.color, glyph: '★' });
  }
  return out;
}

function renderPhases() {
  const sel = $('phase-run');
  if (sel.options.length !== state.runs.length) {
    sel.textContent = '';
    for (const r of state.runs) sel.add(new Option(r.name, String(r.id)));
    sel.value = String(state.phaseRun);
  }
  const r = state.runs[state.phaseRun];
  if (!r) return;
  // Stacked: each series is the running sum, drawn largest first so the smaller ones cover it.
  const parts = PHASES.map(p => r.s.phase[p]);
  const other = r.s.ms.map((ms, i) => (ms === null ? null : Math.max(0, ms - PHASES.reduce((t, p) => t + (r.s.phase[p][i] || 0), 0))));
  const layers = [...parts, other], names = [...PHASES, 'other'];
  const sums = layers.map(() => []);
  for (let i = 0; i < r.s.step.length; i++) {
    let acc = 0;
    layers.forEach((l, k) => { acc += l[i] || 0; sums[k].push(acc); });
  }
  const series = [{ label: state.xMode }];
  const data = [xs(r)];
  for (let k = layers.length - 1; k >= 0; k--) {
    const raw = layers[k];
    series.push({ label: names[k], stroke: PHASE_COLORS[names[k]], fill: PHASE_COLORS[names[k]], width: 1,
                  value: (u, v, si, idx) => (idx === null ? '–' : fmtNum(raw[idx], 3) + ' ms') });
    data.push(sums[k]);
  }
  series.push(line('classifier (inside fwd+bwd)', '#111827', { dash: [3, 3], width: 1, value: (u, v) => fmtNum(v, 3) + ' ms' }));
  data.push(r.s.phase.classifier);
  charts.phase.update({ key: `phase|${r.id}|${state.xMode}`, series, axes: [xAxis(state.xMode), { label: 'ms', size: 60 }] }, data);
}

function renderKernels() {
  const r = state.runs.find(q => Object.keys(q.s.kernels).length);
  $('kernel-panel').hidden = !r;
  if (!r) return;
  const names = Object.keys(r.s.kernels).sort();
  const series = [{ label: state.xMode }, ...names.map((n, i) => line(n, RUN_COLORS[i % RUN_COLORS.length], { value: (u, v) => fmtNum(v) + ' ms' }))];
  charts.kernel.update({ key: `kern|${r.id}|${state.xMode}|${names.join(',')}`, series, axes: [xAxis(state.xMode), { label: 'ms', size: 60 }] },
    [xs(r), ...names.map(n => r.s.kernels[n])]);
}

// The text panels (stats, legend, samples, configuration): web/panels.js.

function render() {
  if (!state.dirty) return;
  state.dirty = false;
  renderLegend();
  renderStats();
  renderCharts();
  renderSamples();
  renderConfig();
  renderLog();
}

// ---------- wiring ----------

function connect() {
  const badge = $('connection');
  const es = new EventSource('api/stream');
  es.addEventListener('hello', e => {
    const hello = JSON.parse(e.data);
    state.runs = hello.runs.map(r => newRun(r.id, r.name));
    state.logVersion += 1;
    if (state.phaseRun >= state.runs.length) state.phaseRun = 0;
    state.dirty = true;
  });
  es.addEventListener('events', e => {
    const msg = JSON.parse(e.data), r = state.runs[msg.run];
    if (!r) return;
    for (const ev of msg.events) apply(r, ev);
    state.dirty = true;
  });
  es.addEventListener('state', e => {
    const msg = JSON.parse(e.data), r = state.runs[msg.run];
    if (!r) return;
    if (msg.reset) state.runs[msg.run] = Object.assign(newRun(r.id, r.name), { missing: msg.missing, bad: msg.bad_lines });
    if (msg.reset) state.logVersion += 1;
    else Object.assign(r, { missing: msg.missing, bad: msg.bad_lines });
    state.dirty = true;
  });
  es.onopen = () => { state.connected = true; badge.textContent = 'live'; badge.className = 'badge live'; };
  es.onerror = () => {
    state.connected = false;
    state.dirty = true;
    badge.textContent = 'server stopped — showing the last data (reconnecting)';
    badge.className = 'badge down';
  };
}

function toggle(onId, offId, apply) {
  $(onId).addEventListener('click', () => {
    $(onId).classList.add('on');
    $(offId).classList.remove('on');
    apply();
    state.dirty = true;
    render();
  });
}

function main() {
  charts.loss = new Chart($('loss-chart'), 360);
  for (const k of ['lr', 'gnorm', 'speed', 'phase', 'kernel', 'mem', 'power', 'scale']) charts[k] = new Chart($(`${k}-chart`), 220);
  toggle('x-step', 'x-time', () => { state.xMode = 'step'; });
  toggle('x-time', 'x-step', () => { state.xMode = 'time'; });
  toggle('y-lin', 'y-log', () => { state.yLog = false; });
  toggle('y-log', 'y-lin', () => { state.yLog = true; });
  $('smooth').addEventListener('change', e => { state.smooth = e.target.checked; state.dirty = true; render(); });
  $('phase-run').addEventListener('change', e => { state.phaseRun = Number(e.target.value); state.dirty = true; render(); });
  connect();
  setInterval(render, 500);
  setInterval(() => { state.dirty = true; }, 5000);  // elapsed times and ETAs move without events
  window.anetrainDashboard = state;  // for the browser test and the curious
}

document.addEventListener('DOMContentLoaded', main);
