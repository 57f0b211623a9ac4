// The Training tab: one run as it trains. State, progress, elapsed and ETA, Stop; then loss (raw
// faint, smoothed, eval), eval accuracy, learning rate, gradient norm, tokens/s, and any other
// metric the run logs, on charts that share the x axis, the hover and the zoom.
import { metricsCsv } from '../lib/csv';
import { formatCount, formatDuration, formatNumber } from '../../protocol/format';
import { currentPalette, type SeriesColour } from '../lib/theme';
import type { RunData } from '../lib/store';
import { Chart, type LineGroup } from './chart';
import { $, html, type Context } from './context';
import { chartsPng, type LegendLine } from './png';
import { group, rawAndSmoothed, smoothed } from './series';

const ACTIVE = new Set(['queued', 'loading', 'training', 'saving']);

interface MetricChart {
  chart: Chart;
  /** Column ids the chart draws (`train/loss`, …): hidden while the run has none of them. */
  columns: string[];
}

/** Titles and colours of the metrics we know; anything else gets a chart of its own. */
const KNOWN: { title: string; lines: { column: string; label: string; colour: SeriesColour; smooth: boolean }[] }[] = [
  {
    title: 'Loss',
    lines: [
      { column: 'train/loss', label: 'train loss', colour: 'blue', smooth: true },
      { column: 'eval/eval_loss', label: 'eval loss', colour: 'orange', smooth: false },
    ],
  },
  { title: 'Eval accuracy', lines: [{ column: 'eval/accuracy', label: 'accuracy', colour: 'green', smooth: false }] },
  { title: 'Learning rate', lines: [{ column: 'train/lr', label: 'lr', colour: 'purple', smooth: false }] },
  { title: 'Gradient norm', lines: [{ column: 'train/grad_norm', label: 'grad norm', colour: 'red', smooth: true }] },
  { title: 'Throughput (tokens/s)', lines: [{ column: 'train/tokens_per_s', label: 'tokens/s', colour: 'yellow', smooth: true }] },
];

export class TrainingView {
  readonly element: HTMLElement;
  private readonly charts: MetricChart[] = [];
  private readonly chartGrid: HTMLElement;
  private stopping: string | undefined;

  constructor(
    parent: HTMLElement,
    private readonly ctx: Context,
  ) {
    this.element = html(`
      <div class="training">
        <header class="run-header">
          <div class="run-title"><span class="run-name"></span><span class="phase"></span></div>
          <div class="run-meta">
            <span class="stat" data-stat="backend"></span>
            <span class="stat" data-stat="steps"></span>
            <span class="stat" data-stat="elapsed"></span>
            <span class="stat" data-stat="eta"></span>
            <span class="stat" data-stat="rate"></span>
            <span class="stat" data-stat="loss"></span>
            <span class="stat" data-stat="eval"></span>
          </div>
          <vscode-button class="stop" secondary disabled>Stop</vscode-button>
        </header>
        <vscode-progress-bar class="progress" max="1" value="0"></vscode-progress-bar>
        <div class="banner" role="alert" hidden></div>
        <p class="empty">No run yet. Start one with "MoSLoRA: Train" from the command palette or the code lens above a config.</p>
        <div class="chart-grid"></div>
      </div>`);
    parent.append(this.element);
    this.chartGrid = $(this.element, '.chart-grid');
    $(this.element, '.stop').addEventListener('click', () => this.stop());
    for (const known of KNOWN) this.addChart(known.title, known.lines);
  }

  private get run(): RunData | undefined {
    return this.ctx.store.current;
  }

  private addChart(title: string, lines: (typeof KNOWN)[number]['lines']): void {
    const chart = new Chart(this.chartGrid, { title, sync: 'training' }, () => this.groups(lines));
    chart.onZoom = (window) => this.charts.forEach((c) => c.chart.setZoom(window));
    chart.element.dataset.chart = lines[0]!.column;
    this.charts.push({ chart, columns: lines.map((l) => l.column) });
  }

  private groups(lines: (typeof KNOWN)[number]['lines']): LineGroup[] {
    const run = this.run;
    if (!run) return [];
    const { xMode, smoothing } = this.ctx.ui;
    const palette = currentPalette();
    return lines.flatMap((line) => {
      const column = run.columns.get(line.column);
      if (!column) return [];
      const spec = { label: line.label, colour: () => palette.series[line.colour] };
      if (line.smooth) return [rawAndSmoothed(column, xMode, smoothing, spec)];
      const eval_ = line.column.startsWith('eval/');
      return [group(column, xMode, [column.values], [{ ...spec, points: eval_ }])];
    });
  }

  /** New data or state: redraw what changed. */
  update(): void {
    const run = this.run;
    $(this.element, '.empty').hidden = run !== undefined;
    if (run) {
      // a metric we do not know by name still gets a chart
      const shown = new Set(this.charts.flatMap((c) => c.columns));
      const colours: SeriesColour[] = ['blue', 'orange', 'green', 'purple', 'red', 'yellow'];
      for (const id of run.columns.keys()) {
        if (shown.has(id)) continue;
        const [kind, metric] = id.split('/') as ['train' | 'eval', string];
        this.addChart(`${metric} (${kind})`, [{ column: id, label: metric, colour: colours[this.charts.length % colours.length]!, smooth: kind === 'train' }]);
        this.charts.at(-1)!.chart.rebuild();
      }
    }
    for (const { chart, columns } of this.charts) {
      chart.element.hidden = !run || !columns.some((c) => run.columns.has(c));
      if (!chart.element.hidden) chart.invalidate();
    }
    this.updateHeader();
  }

  /** Theme, x mode or log scale changed. */
  rebuild(): void {
    for (const { chart } of this.charts) {
      chart.xMode = this.ctx.ui.xMode;
      chart.logY = this.ctx.ui.logY;
      chart.setZoom(null);
      chart.rebuild();
    }
  }

  /** Once a second: elapsed and ETA move on their own. */
  tick(): void {
    if (this.run?.state && ACTIVE.has(this.run.state.phase)) this.updateHeader();
  }

  private updateHeader(): void {
    const run = this.run;
    const state = run?.state;
    const stat = (name: string, text: string): void => {
      const el = $(this.element, `[data-stat="${name}"]`);
      el.textContent = text;
      el.hidden = text === '';
    };
    $(this.element, '.run-name').textContent = run ? run.name : '';
    const phase = $(this.element, '.phase');
    phase.textContent = state?.phase ?? '';
    phase.dataset.phase = state?.phase ?? '';
    phase.hidden = !state;
    const step = state?.step ?? run?.column('train', 'loss')?.steps.at(-1) ?? 0;
    const total = state?.total ?? 0;
    stat('backend', state ? `${state.backend} · ${state.device}` : '');
    const epoch = run?.epoch();
    const epochText = epoch !== undefined ? ` · epoch ${formatCount(epoch + 1)}` : '';
    stat('steps', total ? `step ${formatCount(step)} / ${formatCount(total)}${epochText}` : run ? `step ${formatCount(step)}${epochText}` : '');
    const elapsed = run?.elapsedSeconds(Date.now());
    stat('elapsed', elapsed !== undefined ? `elapsed ${formatDuration(elapsed)}` : '');
    const rate = run?.stepsPerSecond();
    const active = state !== undefined && ACTIVE.has(state.phase);
    const eta = active && rate && total > step ? (total - step) / rate : undefined;
    stat('eta', eta !== undefined ? `ETA ${formatDuration(eta)}` : '');
    stat('rate', rate ? `${formatNumber(rate)} steps/s` : '');
    const loss = run?.column('train', 'loss');
    const smoothedLoss = loss?.length ? smoothed(loss, this.ctx.ui.smoothing).at(-1) : undefined;
    stat('loss', smoothedLoss !== undefined && Number.isFinite(smoothedLoss) ? `loss ${formatNumber(smoothedLoss)}` : '');
    const evalLoss = run?.last('eval', 'eval_loss');
    stat('eval', evalLoss !== undefined ? `eval loss ${formatNumber(evalLoss)}` : '');
    const progress = $<HTMLElement & { value: number }>(this.element, '.progress');
    progress.hidden = !total;
    progress.value = total ? Math.min(1, step / total) : 0;
    const stop = $<HTMLElement & { disabled: boolean }>(this.element, '.stop');
    if (this.stopping !== state?.runId || !active) this.stopping = undefined;
    stop.hidden = !state;
    stop.disabled = !active || this.stopping !== undefined;
    stop.textContent = this.stopping ? 'Stopping…' : 'Stop';
    const banner = $(this.element, '.banner');
    banner.hidden = !(state?.phase === 'failed' || (state?.phase === 'stopped' && state.reason));
    banner.dataset.kind = state?.phase ?? '';
    banner.textContent = state?.phase === 'failed' ? `Training failed: ${state.reason ?? 'no reason given'}` : (state?.reason ?? '');
  }

  private stop(): void {
    const state = this.run?.state;
    if (!state || !ACTIVE.has(state.phase) || this.stopping) return;
    this.stopping = state.runId;
    this.ctx.post({ type: 'stop', runId: state.runId });
    this.updateHeader();
  }

  exportCsv(): { fileName: string; csv: string } | undefined {
    const run = this.run;
    if (!run) return undefined;
    return { fileName: `${safeName(run.name)}-metrics.csv`, csv: metricsCsv([{ name: run.name, records: run.records }]) };
  }

  exportPng(): { fileName: string; dataUrl: string } | undefined {
    const run = this.run;
    if (!run) return undefined;
    const visible = this.charts.filter((c) => !c.chart.element.hidden).map((c) => c.chart);
    const state = run.state;
    const legend: LegendLine[] = [
      { text: `${run.name}${state ? ` · ${state.phase} · step ${formatCount(state.step)}/${formatCount(state.total)} · ${state.backend} · ${state.device}` : ''}` },
      { text: `smoothing ${this.ctx.ui.smoothing} (debiased EMA) · x: ${this.ctx.ui.xMode === 'wall' ? 'wall time' : 'step'}${this.ctx.ui.logY ? ' · log y' : ''}` },
    ];
    return { fileName: `${safeName(run.name)}-training.png`, dataUrl: chartsPng(`MoSLoRA training: ${run.name}`, visible, legend) };
  }
}

/** A run name as a file name: no separators, nothing odd. */
export function safeName(name: string): string {
  return name.replace(/[^\w.-]+/g, '_').replace(/^\.+/, '').slice(0, 120) || 'run';
}
