// The report's figures as standalone SVG text: learning curves (per method the mean over seeds
// with a band from the lowest to the highest seed at each step) and the paired differences (one
// dot per seed, the mean with its t-interval). Pure string building: no DOM, no files.
import { methodName, METRIC_LABELS, type AbReport, type Metric } from './report';
import type { CurvePoint } from './results';

const WIDTH = 720;
const MARGIN = { left: 72, right: 20, top: 44, bottom: 52 };
/** One colour per method in the manifest's order (the first, the baseline, in blue). */
const COLOURS = ['#4c72b0', '#dd8452', '#55a868', '#c44e52', '#8172b3'];
const FONT = 'font-family="sans-serif" font-size="12"';

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** About `count` round tick values (1, 2 or 5 × 10^k apart) covering [low, high]. */
export function ticks(low: number, high: number, count = 5): number[] {
  if (!(high > low)) return [low];
  const rough = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough)!;
  const out: number[] = [];
  // multiples of the step, not a running sum: 0 stays 0
  for (let k = Math.ceil(low / step - 1e-9); k * step <= high + step * 1e-9; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

function tickLabel(value: number, all: number[]): string {
  const step = all.length > 1 ? Math.abs(all[1]! - all[0]!) : Math.abs(value) || 1;
  return value.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
}

interface Frame {
  height: number;
  x: (value: number) => number;
  y: (value: number) => number;
  xTicks: number[];
  yTicks: number[];
}

function frame(height: number, xRange: [number, number], yRange: [number, number]): Frame {
  const [x0, x1] = xRange[1] > xRange[0] ? xRange : [xRange[0] - 1, xRange[0] + 1];
  const pad = (yRange[1] - yRange[0]) * 0.05 || Math.abs(yRange[0]) * 0.05 || 1;
  const [y0, y1] = [yRange[0] - pad, yRange[1] + pad];
  const innerWidth = WIDTH - MARGIN.left - MARGIN.right;
  const innerHeight = height - MARGIN.top - MARGIN.bottom;
  return {
    height,
    x: (value) => MARGIN.left + ((value - x0) / (x1 - x0)) * innerWidth,
    y: (value) => MARGIN.top + (1 - (value - y0) / (y1 - y0)) * innerHeight,
    xTicks: ticks(x0, x1),
    yTicks: ticks(y0, y1),
  };
}

/** yTicks false: rows of categories, no value scale. */
function axes(f: Frame, title: string, xLabel: string, yLabel: string, yTicks = true): string[] {
  const bottom = f.height - MARGIN.bottom;
  const right = WIDTH - MARGIN.right;
  const out = [
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-family="sans-serif" font-size="15">${escape(title)}</text>`,
    `<line x1="${MARGIN.left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#333"/>`,
    `<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${bottom}" stroke="#333"/>`,
    `<text x="${(MARGIN.left + right) / 2}" y="${f.height - 12}" text-anchor="middle" ${FONT}>${escape(xLabel)}</text>`,
    `<text transform="translate(16 ${(MARGIN.top + bottom) / 2}) rotate(-90)" text-anchor="middle" ${FONT}>${escape(yLabel)}</text>`,
  ];
  for (const value of f.xTicks) {
    const x = f.x(value).toFixed(1);
    out.push(`<line x1="${x}" y1="${bottom}" x2="${x}" y2="${bottom + 5}" stroke="#333"/>`, `<text x="${x}" y="${bottom + 18}" text-anchor="middle" ${FONT}>${tickLabel(value, f.xTicks)}</text>`);
  }
  for (const value of yTicks ? f.yTicks : []) {
    const y = f.y(value).toFixed(1);
    out.push(`<line x1="${MARGIN.left}" y1="${y}" x2="${right}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${MARGIN.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle" ${FONT}>${tickLabel(value, f.yTicks)}</text>`);
  }
  return out;
}

function svg(height: number, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

export interface BandPoint {
  step: number;
  mean: number;
  low: number;
  high: number;
  /** Seeds that logged this step. */
  n: number;
}

/** Mean, lowest and highest value over the curves at each step any of them logged. */
export function band(curves: CurvePoint[][]): BandPoint[] {
  const bySteps = new Map<number, number[]>();
  for (const curve of curves) for (const { step, value } of curve) (bySteps.get(step) ?? bySteps.set(step, []).get(step)!).push(value);
  return [...bySteps.entries()]
    .sort(([a], [b]) => a - b)
    .map(([step, values]) => ({ step, mean: values.reduce((a, b) => a + b, 0) / values.length, low: Math.min(...values), high: Math.max(...values), n: values.length }));
}

/** Train or eval loss against step: per method the mean over its finished seeds, and their range as a band. */
export function curvesFigure(report: AbReport, which: 'train' | 'eval'): string | null {
  const done = report.runs.filter((run) => run.outcome === 'done');
  const series = report.methods.map((method, i) => ({
    method,
    colour: COLOURS[i % COLOURS.length]!,
    seeds: done.filter((run) => run.method === method).length,
    points: band(done.filter((run) => run.method === method).map((run) => (which === 'train' ? run.trainCurve : run.evalCurve))),
  }));
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return null;
  const height = 400;
  const f = frame(height, [Math.min(0, ...all.map((p) => p.step)), Math.max(...all.map((p) => p.step))], [Math.min(...all.map((p) => p.low)), Math.max(...all.map((p) => p.high))]);
  const label = which === 'train' ? 'train loss' : 'eval loss';
  const body = axes(f, `${label[0]!.toUpperCase()}${label.slice(1)}: mean over seeds, band from lowest to highest seed`, 'step', label);
  const xy = (step: number, value: number) => `${f.x(step).toFixed(1)},${f.y(value).toFixed(1)}`;
  for (const s of series) {
    if (s.points.length === 0) continue;
    if (s.points.some((p) => p.n > 1)) {
      const outline = [...s.points.map((p) => xy(p.step, p.high)), ...[...s.points].reverse().map((p) => xy(p.step, p.low))];
      body.push(`<polygon points="${outline.join(' ')}" fill="${s.colour}" fill-opacity="0.18" stroke="none"/>`);
    }
    body.push(`<polyline points="${s.points.map((p) => xy(p.step, p.mean)).join(' ')}" fill="none" stroke="${s.colour}" stroke-width="2"/>`);
    if (s.points.length < 4) for (const p of s.points) body.push(`<circle cx="${f.x(p.step).toFixed(1)}" cy="${f.y(p.mean).toFixed(1)}" r="3.5" fill="${s.colour}"/>`);
  }
  series.forEach((s, i) => {
    const y = MARGIN.top + 12 + i * 18;
    const x = WIDTH - MARGIN.right - 190;
    body.push(
      `<rect x="${x}" y="${y - 6}" width="18" height="12" fill="${s.colour}" fill-opacity="0.35" stroke="${s.colour}"/>`,
      `<text x="${x + 26}" y="${y}" dominant-baseline="middle" ${FONT}>${escape(`${methodName(s.method)} (${s.seeds} seed${s.seeds === 1 ? '' : 's'})`)}</text>`,
    );
  });
  return svg(height, body);
}

/** Each comparison's paired differences of `metric`: a dot per seed, the mean and its t-interval, and zero. */
export function pairedFigure(report: AbReport, metric: Metric): string | null {
  const rows = report.comparisons.flatMap((c) => {
    const d = c.differences[metric];
    return d ? [{ label: `${methodName(c.method)} − ${methodName(c.baseline)}`, d }] : [];
  });
  if (rows.length === 0) return null;
  const scale = metric === 'accuracy' ? 100 : 1;
  const values = rows.flatMap(({ d }) => [...d.differences, d.mean - (d.halfWidth ?? 0), d.mean + (d.halfWidth ?? 0)].map((v) => v * scale));
  const span = Math.max(...values.map(Math.abs), 1e-12);
  const rowHeight = 56;
  const height = MARGIN.top + MARGIN.bottom + rowHeight * rows.length + 8;
  const f = frame(height, [Math.min(0, ...values) - span * 0.08, Math.max(0, ...values) + span * 0.08], [0, rows.length]);
  const unit = metric === 'accuracy' ? ' (points)' : '';
  const pct = Math.round(report.confidence * 100);
  const body = axes(f, `Paired difference of ${METRIC_LABELS[metric]} per seed; mean with its ${pct}% t-interval`, `difference${unit}`, '', false);
  const zero = f.x(0).toFixed(1);
  body.push(`<line x1="${zero}" y1="${MARGIN.top}" x2="${zero}" y2="${height - MARGIN.bottom}" stroke="#999" stroke-dasharray="4 3"/>`);
  rows.forEach(({ label, d }, i) => {
    const y = MARGIN.top + rowHeight * (i + 0.5) + 4;
    const colour = COLOURS[(i + 1) % COLOURS.length]!;
    body.push(`<text x="${MARGIN.left + 6}" y="${y - 18}" ${FONT}>${escape(label)}</text>`);
    if (d.halfWidth !== null) {
      const [x0, x1] = [f.x((d.mean - d.halfWidth) * scale).toFixed(1), f.x((d.mean + d.halfWidth) * scale).toFixed(1)];
      body.push(`<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" stroke="#333" stroke-width="2"/>`, `<line x1="${x0}" y1="${y - 6}" x2="${x0}" y2="${y + 6}" stroke="#333" stroke-width="2"/>`, `<line x1="${x1}" y1="${y - 6}" x2="${x1}" y2="${y + 6}" stroke="#333" stroke-width="2"/>`);
    }
    d.differences.forEach((v, k) => body.push(`<circle cx="${f.x(v * scale).toFixed(1)}" cy="${(y + 12).toFixed(1)}" r="4" fill="${colour}" fill-opacity="0.8"><title>seed ${d.seeds[k]}: ${v * scale}</title></circle>`));
    const m = f.x(d.mean * scale);
    body.push(`<path d="M ${m.toFixed(1)} ${y - 7} l 7 7 l -7 7 l -7 -7 z" fill="#333"/>`);
  });
  return svg(height, body);
}
