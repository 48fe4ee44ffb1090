'use strict';
// The dashboard's text panels: the stats row, the run legend, the latest samples and the runs'
// configuration side by side, each rebuilt from app.js's per-run state when it redraws.

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (k === 'class') e.className = v; else e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function stat(k, v, unit, sub) {
  return el('div', { class: 'stat' }, el('div', { class: 'k' }, k), el('div', { class: 'v' }, v, unit ? el('small', {}, unit) : null),
    el('div', { class: 'sub' }, sub || '\u00a0'));
}

function renderStats() {
  const box = $('stats');
  box.textContent = '';
  const now = Date.now() / 1000;
  for (const r of state.runs) {
    const s = r.s, n = s.step.length, last = a => (n ? a[n - 1] : null);
    const step = last(s.step), msMed = median(recent(s.ms)), tps = median(recent(s.tps)), g = median(recent(s.gflops));
    const peak = r.start && num(r.start.matrix_peak_gflops);
    const running = r.status === 'running';
    const elapsed = r.t0 === null ? null : (running && state.connected ? now : r.lastTime) - r.t0;
    const eta = running && r.total && msMed ? ((r.total - step) * msMed) / 1000 : null;
    if (state.runs.length > 1) box.append(el('div', { class: 'stat-run' }, el('span', { class: 'swatch' }), r.name));
    const lastLoss = [...s.loss].reverse().find(v => v !== null);
    box.append(
      stat('step', step === null ? '–' : step.toLocaleString('en-US'), r.total ? `/ ${r.total.toLocaleString('en-US')}` : '',
        `${r.status}${eta !== null ? ' · ETA ' + fmtDuration(eta) : ''}`),
      stat('train loss', fmtNum(lastLoss, 4), '', state.smooth ? `smoothed ${fmtNum(smoothed(s.loss).filter(v => v !== null).pop(), 4)}` : ''),
      stat('val loss', fmtNum(r.e.val.length ? r.e.val[r.e.val.length - 1] : null, 4), '',
        r.best ? `best ${fmtNum(r.best.val, 4)} at step ${r.best.step}` : 'no evaluation yet'),
      stat('tokens/s', fmtNum(tps), '', g ? `${fmtNum(g)} GFLOP/s${peak && peakRate(r) ? ` · ${Math.round((100 * peakRate(r)) / peak)}% of ${onAccelerator(r) ? 'the accelerator\'s ' : ''}peak` : ''}` : ''),
      stat('ms/step', fmtNum(msMed), '', `elapsed ${fmtDuration(elapsed)}`),
      stat('memory', fmtNum(last(s.rss)), 'MB', `peak ${fmtNum(last(s.peak))} MB`),
      stat('CPU', fmtNum(last(s.cpu)), '%', r.start ? `${r.start.threads} threads` : ''),
      stat('power', fmtNum(last(s.power)), last(s.power) === null ? '' : 'W',
        last(s.power) === null ? 'unavailable here' : (r.start && r.start.power_source) || ''),
    );
    const sw = box.querySelectorAll('.stat-run .swatch');
    if (sw.length) sw[sw.length - 1].style.background = r.color;
  }
  if (!state.runs.length) box.append(el('p', { class: 'note' }, 'Waiting for the server…'));
}

function renderLegend() {
  const box = $('run-legend');
  box.textContent = '';
  for (const r of state.runs) {
    const sw = el('span', { class: 'swatch' });
    sw.style.background = r.color;
    const model = r.start ? ` · ${r.start.options ? r.start.options.model : ''}` : '';
    box.append(el('span', {}, sw, r.name, el('span', { class: 'status' }, `${model} · ${r.missing ? 'telemetry missing' : r.status}${r.bad ? ` · ${r.bad} bad lines skipped` : ''}${r.fallbacks ? ` · ${r.fallbacks} ANE fallback${r.fallbacks > 1 ? 's' : ''}` : ''}`)));
  }
}

function renderSamples() {
  const all = state.runs.flatMap(r => r.samples.map(s => ({ r, s }))).sort((a, b) => b.s.time - a.s.time).slice(0, 8);
  const box = $('samples');
  if (!all.length) return;
  box.textContent = '';
  for (const { r, s } of all) {
    box.append(el('div', { class: 'sample' },
      el('div', { class: 'meta' }, `${r.name} · step ${s.step} · ${fmtNum(s.ms)} ms`),
      el('div', {}, el('span', { class: 'kind' }, 'greedy'), el('span', { class: 'prompt' }, s.prompt), s.greedy),
      el('div', {}, el('span', { class: 'kind' }, `T=${s.temperature}`), el('span', { class: 'prompt' }, s.prompt), s.sampled)));
  }
}

function renderConfig() {
  const rows = [
    ['model', r => r.start.options.model], ['parameters', r => `${fmtNum(r.start.params / 1e6)} M`],
    ['FLOPs / step', r => `${fmtNum(r.start.flops_per_step / 1e9)} GFLOP`], ['precision', r => r.start.precision],
    ['backend', r => `${r.start.backend}${r.start.gemm_isa ? ' (' + r.start.gemm_isa + ')' : ''}`],
    ['batch × seq × accum', r => `${r.start.options.batch} × ${r.start.options.seq} × ${r.start.options.accum}`],
    ['lr · warmup · clip', r => `${r.start.options.lr} · ${r.start.options.warmup} · ${r.start.options.clip}`],
    ['threads', r => r.start.threads], ['CPU', r => r.start.cpu],
    ['matrix peak', r => (num(r.start.matrix_peak_gflops) ? `${fmtNum(r.start.matrix_peak_gflops)} GFLOP/s (${r.start.matrix_peak_source || 'measured at start'})` : (r.start.matrix_peak_source || '–'))],
    ['programs compiled', r => (r.compiles ? r.compiles : '–')],
    ['efficiency (at the end)', r => (r.efficiency ? efficiencyText(r.efficiency) : '–')],
    ['matrix FLOPs / step', r => (r.efficiency && r.efficiency.matrix_flops_per_step ? `${fmtNum(r.efficiency.matrix_flops_per_step.accelerator / 1e9)} GFLOP accelerator · ${fmtNum(r.efficiency.matrix_flops_per_step.cpu / 1e9)} GFLOP CPU` : '–')],
    ['compile per step', r => (r.efficiency && r.efficiency.compiles ? `${fmtNum(r.efficiency.compile_ms_per_step)} ms (${r.efficiency.compiles} programs, ${fmtNum(r.efficiency.compile_ms)} ms)` : '–')],
    ['git commit', r => r.start.git_commit],
  ];
  const runs = state.runs.filter(r => r.start && r.start.options);
  const t = el('table', { class: 'kv' });
  if (runs.length > 1) t.append(el('tr', {}, el('th', {}, ''), ...runs.map(r => el('th', {}, r.name))));
  for (const [k, f] of rows) {
    t.append(el('tr', {}, el('th', {}, k), ...runs.map(r => { try { return el('td', {}, f(r) ?? '–'); } catch (e) { return el('td', {}, '–'); } })));
  }
  $('config').textContent = '';
  $('config').append(runs.length ? t : el('p', { class: 'note' }, 'Waiting for run_start…'));
}
