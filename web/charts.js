'use strict';
// Thin helpers over uPlot: a chart that follows its container's width, keeps the user's zoom while
// points arrive, and is rebuilt only when its shape changes (runs added, log scale, x axis).

const RUN_COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#4d7c0f'];
const PHASE_COLORS = { data: '#94a3b8', forward: '#60a5fa', backward: '#f59e0b', optimizer: '#34d399', other: '#e5e7eb' };

class Chart {
  constructor(el, height) {
    this.el = el;
    this.height = height;
    this.u = null;
    this.key = '';
    this.zoomed = false;
    new ResizeObserver(() => {
      if (this.u && this.u.width !== this.width()) this.u.setSize({ width: this.width(), height: this.height });
    }).observe(el);
  }

  width() { return Math.max(240, this.el.clientWidth); }

  // spec: {key, series, scales, axes, hooks}; data: uPlot's aligned columns [xs, ys...].
  update(spec, data) {
    if (!this.u || spec.key !== this.key) {
      if (this.u) this.u.destroy();
      this.el.textContent = '';
      this.key = spec.key;
      this.zoomed = false;
      const hooks = Object.assign({}, spec.hooks || {});
      hooks.setSelect = [u => { if (u.select.width > 4) this.zoomed = true; }];
      this.u = new uPlot({
        width: this.width(), height: this.height,
        series: spec.series, scales: spec.scales || { x: { time: false } }, axes: spec.axes, hooks,
        cursor: { drag: { x: true, y: false }, points: { size: 6 } },
        legend: { live: true },
      }, data, this.el);
      this.u.over.addEventListener('dblclick', () => { this.zoomed = false; });
    } else {
      this.u.setData(data, !this.zoomed);  // a zoomed chart keeps its window while data arrives
    }
  }
}

// Aligns per-run tables [xs, ys...] on the union of their xs (gaps as undefined, which lines span).
function joinTables(tables) {
  const nonEmpty = tables.map(t => (t[0].length ? t : [[], ...t.slice(1).map(() => [])]));
  if (!nonEmpty.length) return [[]];
  return uPlot.join(nonEmpty);
}

function fmtNum(v, digits = 3) {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  return Number(v.toPrecision(digits)).toString();
}

function fmtDuration(s) {
  if (s === null || s === undefined || !isFinite(s)) return '–';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m) return `${m}m ${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

// Tick labels: enough digits to tell neighbouring ticks apart (learning rates are ~1e-4).
function fmtTick(v) {
  if (v === null || v === undefined) return '';  // uPlot leaves filtered ticks (log scales) empty
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a < 0.01) return v.toExponential(1).replace('.0e', 'e');
  if (a >= 1e5) return v.toExponential(1).replace('.0e', 'e');
  return String(Number(v.toPrecision(4)));
}
const yTicks = (u, vals) => vals.map(fmtTick);

// Elapsed-time ticks: tenths of a second for short runs, else as fmtDuration.
function fmtTimeTick(v) {
  return v < 60 && Math.abs(v - Math.round(v)) > 1e-6 ? `${v.toFixed(1)}s` : fmtDuration(v);
}

function xAxis(mode) {
  return mode === 'time'
    ? { label: 'time since start', values: (u, vals) => vals.map(v => (v === null ? '' : fmtTimeTick(v))) }
    : { label: 'step' };
}

// Markers drawn over a chart: {x, y (null: along the bottom), color, glyph}.
function markerHook(getMarkers) {
  return [u => {
    const ctx = u.ctx, dpr = devicePixelRatio || 1;
    ctx.save();
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (const m of getMarkers()) {
      if (m.x < u.scales.x.min || m.x > u.scales.x.max) continue;
      const cx = u.valToPos(m.x, 'x', true);
      const cy = m.y === null ? u.bbox.top + u.bbox.height - 6 * dpr : u.valToPos(m.y, 'y', true);
      if (!isFinite(cy)) continue;
      ctx.font = `${(m.glyph === '★' ? 16 : 10) * dpr}px system-ui, sans-serif`;
      ctx.fillStyle = m.color;
      ctx.fillText(m.glyph, cx, cy);
    }
    ctx.restore();
  }];
}

// A horizontal dashed line at y (the clipping threshold).
function hlineHook(getY, color) {
  return [u => {
    const y = getY();
    if (y === null || !(y > 0) || y < u.scales.y.min || y > u.scales.y.max) return;
    const ctx = u.ctx, py = u.valToPos(y, 'y', true);
    ctx.save();
    ctx.strokeStyle = color;
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, py);
    ctx.lineTo(u.bbox.left + u.bbox.width, py);
    ctx.stroke();
    ctx.restore();
  }];
}
