// One uPlot chart over any number of line groups, each with its own x (train steps, eval steps,
// another run's steps). All data stays with the caller; every draw thins the visible window to a
// few points per pixel column (lib/decimate.ts) and aligns the groups on one x for uPlot.
import uPlot from 'uplot';
import { lowerBound, m4 } from '../lib/decimate';
import { formatDuration, formatNumber, formatTicks } from '../../protocol/format';
import { css, currentPalette, type Rgb } from '../lib/theme';

export type XMode = 'step' | 'wall';

export interface LineSpec {
  label: string;
  colour: () => Rgb;
  /** Raw lines under a smoothed curve are faint. */
  faint?: boolean;
  width?: number;
  dash?: number[];
  /** Mark each point (sparse series such as eval). */
  points?: boolean;
  /** Leave out of the hover legend (a raw line next to its smoothed curve). */
  hideInLegend?: boolean;
  /** The upper edge of a band: the area down to the next line (its lower edge) is filled, faintly. */
  bandUpper?: boolean;
}

/** Lines that share one x: e.g. raw loss and its smoothed curve. NaN in y draws a gap. */
export interface LineGroup {
  x: ArrayLike<number>;
  ys: ArrayLike<number>[];
  specs: LineSpec[];
}

export interface ChartOptions {
  title: string;
  /** The y axis's title (the x axis's is the x mode: step or wall time). */
  yLabel: string;
  /** Cursor sync key: charts with the same key share the hover position. */
  sync?: string;
  legend?: boolean;
  height?: number;
  /** An x to mark with a vertical line (the mixer scrubber's step). */
  marker?: () => number | undefined;
}

export class Chart {
  readonly element: HTMLElement;
  private readonly plotHost: HTMLElement;
  private plot: uPlot | undefined;
  private layoutKey = '';
  private groups: LineGroup[] = [];
  private pending = false;
  private zoom: [number, number] | null = null;
  xMode: XMode = 'step';
  logY = false;
  /** The y axis's title; a change shows at the next rebuild. */
  yLabel: string;
  /** Called when the user drags a zoom window (or double-clicks back to all). */
  onZoom: (window: [number, number] | null) => void = (w) => this.setZoom(w);

  constructor(
    parent: HTMLElement,
    private readonly options: ChartOptions,
    private readonly provide: () => LineGroup[],
  ) {
    this.yLabel = options.yLabel;
    this.element = document.createElement('section');
    this.element.className = 'chart';
    const title = document.createElement('h3');
    title.textContent = options.title;
    this.plotHost = document.createElement('div');
    this.plotHost.className = 'chart-plot';
    this.element.append(title, this.plotHost);
    parent.append(this.element);
    // resizing the plot inside the observer's callback would change the layout it reports on
    // (the browser's "ResizeObserver loop" note): the next frame does it
    new ResizeObserver(() => requestAnimationFrame(() => this.resize())).observe(this.plotHost);
  }

  /** Redraw on the next frame (coalesces bursts of live updates). */
  invalidate(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  /** Rebuild from scratch: theme, log scale or x mode changed. */
  rebuild(): void {
    this.layoutKey = '';
    this.invalidate();
  }

  /** Repaint without new data (the marker moved). */
  repaint(): void {
    this.plot?.redraw(false, false);
  }

  setZoom(window: [number, number] | null): void {
    this.zoom = window;
    this.invalidate();
  }

  /** The chart as drawn, for PNG export; undefined before the first draw. */
  get canvas(): HTMLCanvasElement | undefined {
    return this.plot?.ctx.canvas;
  }

  get title(): string {
    return this.options.title;
  }

  /** What is drawn: for export legends and for tests. */
  get drawnGroups(): readonly LineGroup[] {
    return this.groups;
  }

  private width(): number {
    return Math.max(200, Math.floor(this.plotHost.clientWidth));
  }

  private resize(): void {
    if (!this.plot) return this.invalidate();
    const width = this.width();
    if (width !== this.plot.width) {
      this.plot.setSize({ width, height: this.options.height ?? 220 });
      this.invalidate();
    }
  }

  draw(): void {
    this.groups = this.provide();
    const specs = this.groups.flatMap((g) => g.specs);
    const key = JSON.stringify([specs.map((s) => [s.label, s.faint, s.points, s.dash, s.hideInLegend]), this.xMode, this.logY]);
    const plotWidth = this.plot ? this.plot.bbox.width / devicePixelRatio : 0;
    const { data, total } = this.align(plotWidth || this.width() - 60);
    if (key !== this.layoutKey || !this.plot) {
      this.plot?.destroy();
      this.plot = new uPlot(this.uplotOptions(specs), data, this.plotHost);
      this.layoutKey = key;
      // for tests and debugging: the element carries its plot
      Object.defineProperty(this.element, 'uplot', { value: this.plot, configurable: true });
    } else {
      this.plot.setData(data, true);
    }
    this.element.dataset.pointsTotal = String(total);
    this.element.dataset.pointsDrawn = String(data[0].length);
    this.element.dataset.series = String(specs.length);
  }

  /**
   * Thins every group to the visible x window and merges them on one x. Holes from the merge
   * are `undefined` (uPlot joins across them); NaN becomes `null` (uPlot leaves a gap).
   */
  private align(columns: number): { data: uPlot.AlignedData; total: number } {
    const columnsPx = Math.max(1, Math.round(columns));
    let total = 0;
    const picked = this.groups.map((g) => {
      total += g.x.length * g.ys.length;
      let lo = 0;
      let hi = g.x.length;
      if (this.zoom) {
        // one point beyond each edge, so lines run to the frame
        lo = Math.max(0, lowerBound(g.x, this.zoom[0]) - 1);
        hi = Math.min(g.x.length, lowerBound(g.x, this.zoom[1]) + 1);
      }
      return m4(g.x, g.ys, lo, hi, columnsPx);
    });
    const xs = new Set<number>();
    picked.forEach((indices, gi) => indices.forEach((i) => xs.add(this.groups[gi]!.x[i]!)));
    const x = Float64Array.from(xs).sort();
    const ys: (number | null | undefined)[][] = [];
    picked.forEach((indices, gi) => {
      const group = this.groups[gi]!;
      for (const y of group.ys) {
        const column = new Array<number | null | undefined>(x.length).fill(undefined);
        let at = 0;
        for (const i of indices) {
          const xi = group.x[i]!;
          while (x[at]! < xi) at++;
          const v = y[i]!;
          column[at] = Number.isFinite(v) && (!this.logY || v > 0) ? v : null;
        }
        ys.push(column);
      }
    });
    return { data: [x, ...ys], total };
  }

  private uplotOptions(specs: LineSpec[]): uPlot.Options {
    const p = currentPalette();
    const foreground = css(p.foreground);
    const axis = (label: string, values: uPlot.Axis['values']): uPlot.Axis => ({
      stroke: foreground,
      font: p.font,
      label,
      labelFont: p.font,
      labelSize: 16,
      labelGap: 2,
      grid: { stroke: p.grid, width: 1 },
      ticks: { stroke: p.grid, width: 1 },
      values,
    });
    return {
      width: this.width(),
      height: this.options.height ?? 220,
      pxAlign: false,
      cursor: {
        drag: { x: true, y: false, setScale: false },
        ...(this.options.sync ? { sync: { key: this.options.sync } } : {}),
        points: { size: 6 },
      },
      select: { show: true, left: 0, top: 0, width: 0, height: 0 },
      legend: { show: this.options.legend ?? true, live: true },
      scales: {
        x: { time: false, range: (_u, min, max) => this.zoom ?? [min, max] },
        y: this.logY
          ? { distr: 3, log: 10, range: (_u, min, max) => [min / 1.15, max * 1.15] }
          : { range: (_u, min, max) => uPlot.rangeNum(min, max, 0.05, true) },
      },
      axes: [
        // a split uPlot leaves unlabelled (log scales thin their labels) comes as null
        {
          ...axis(this.xMode === 'wall' ? 'wall time (m:ss)' : 'step', (_u, splits) => splits.map((v) => (v == null ? '' : this.xMode === 'wall' ? formatDuration(v) : formatNumber(v)))),
          // steps are whole: ticks at 1, 2, 5 × 10ⁿ, never between two steps
          ...(this.xMode === 'step' ? { incrs: WHOLE_INCREMENTS } : {}),
          // tick, gap and one line of values: the axis title sits right under them
          size: 32,
        },
        { ...axis(this.yLabel, (_u, splits) => formatTicks(splits)), size: fitLabels },
      ],
      // series 0 is x: spec i is series i + 1
      bands: specs.flatMap((s, i): uPlot.Band[] => (s.bandUpper ? [{ series: [i + 1, i + 2], fill: () => css(s.colour(), 0.18) }] : [])),
      series: [
        { label: this.xMode === 'wall' ? 'time' : 'step', value: (_u, v) => (v == null ? '–' : this.xMode === 'wall' ? formatDuration(v) : String(v)) },
        ...specs.map(
          (s): uPlot.Series => ({
            label: s.label,
            stroke: () => css(s.colour(), s.faint ? currentPalette().rawAlpha : 1),
            width: s.width ?? (s.faint ? 1 : 1.75),
            ...(s.dash ? { dash: s.dash } : {}),
            // a line needs two points: until then (and for sparse series) each point is drawn
            points: { show: s.points ? true : (u, si) => finiteCount(u.data[si]) < 2, size: 5, fill: () => css(s.colour()) },
            value: (_u, v) => formatNumber(v),
            spanGaps: false,
            ...(s.hideInLegend ? { class: 'legend-hidden' } : {}),
          }),
        ),
      ],
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width > 3) {
              const a = u.posToVal(u.select.left, 'x');
              const b = u.posToVal(u.select.left + u.select.width, 'x');
              this.onZoom([Math.min(a, b), Math.max(a, b)]);
            }
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          },
        ],
        ready: [(u) => u.over.addEventListener('dblclick', () => this.onZoom(null))],
        draw: [(u) => this.drawMarker(u)],
      },
    };
  }

  private drawMarker(u: uPlot): void {
    const x = this.options.marker?.();
    if (x === undefined) return;
    const px = u.valToPos(x, 'x', true);
    const { ctx, bbox } = u;
    ctx.save();
    ctx.strokeStyle = css(currentPalette().foreground, 0.6);
    ctx.setLineDash([4, 3]);
    ctx.lineWidth = devicePixelRatio;
    ctx.beginPath();
    ctx.moveTo(px, bbox.top);
    ctx.lineTo(px, bbox.top + bbox.height);
    ctx.stroke();
    ctx.restore();
  }
}

/** 1, 2, 5 × 10ⁿ up to 10¹²: the tick spacings of a step axis. */
const WHOLE_INCREMENTS = Array.from({ length: 13 }, (_, n) => [1, 2, 5].map((m) => m * 10 ** n)).flat();

/**
 * The y axis as wide as its widest tick label (uPlot's fixed default cuts labels such as
 * "3.000e-3" at the left edge, on screen and in exported PNGs). uPlot asks again as the ticks
 * settle; after two rounds it keeps the size it has, as its own auto-size example does.
 */
function fitLabels(u: uPlot, values: string[] | null, axisIndex: number, cycle: number): number {
  const axis = u.axes[axisIndex]!;
  const current = (axis as { _size?: number })._size;
  if (cycle > 1 && current !== undefined) return current;
  const longest = (values ?? []).reduce((a, v) => (v.length > a.length ? v : a), '');
  let width = 0;
  if (longest) {
    u.ctx.save();
    u.ctx.font = (axis.font as unknown as [string, number])[0] ?? u.ctx.font;
    width = u.ctx.measureText(longest).width / devicePixelRatio;
    u.ctx.restore();
  }
  return Math.ceil((axis.ticks?.size ?? 10) + (axis.gap ?? 5) + width + 4);
}

function finiteCount(values: uPlot.AlignedData[number] | undefined): number {
  let n = 0;
  for (const v of values ?? []) if (v != null && Number.isFinite(v)) n++;
  return n;
}
