// The Training tab: one run, picked from every run (newest first), live or finished. State,
// progress, elapsed and ETA, Stop or Resume, rename and delete; the jobs waiting in the queue;
// then loss (raw faint, smoothed, eval), eval accuracy, learning rate, gradient norm, tokens/s,
// and any other metric the run logs, on charts that share the x axis, the hover and the zoom.
import { paletteTitles } from '../../protocol/commands';
import { metricsCsv } from '../lib/csv';
import { formatCount, formatDuration, formatNumber } from '../../protocol/format';
import { currentPalette, type SeriesColour } from '../lib/theme';
import type { RunData } from '../lib/store';
import { Chart, type LineGroup } from './chart';
import { $, html, type Context } from './context';
import { RunPicker } from './picker';
import { chartsPng, type LegendLine } from './png';
import { group, rawAndSmoothed } from './series';

const ACTIVE = new Set(['queued', 'loading', 'training', 'saving']);

interface MetricChart {
  chart: Chart;
  /** Column ids the chart draws (`train/loss`, …): hidden while the run has none of them. */
  columns: string[];
}

/** Titles, y-axis titles and colours of the metrics we know; anything else gets a chart of its own. */
const KNOWN: { title: string; yLabel: string; lines: { column: string; label: string; colour: SeriesColour; smooth: boolean }[] }[] = [
  {
    title: 'Loss',
    yLabel: 'loss (nats/token)',
    lines: [
      { column: 'train/loss', label: 'train loss', colour: 'blue', smooth: true },
      { column: 'eval/eval_loss', label: 'eval loss', colour: 'orange', smooth: false },
    ],
  },
  { title: 'Eval accuracy', yLabel: 'accuracy', lines: [{ column: 'eval/accuracy', label: 'accuracy', colour: 'green', smooth: false }] },
  { title: 'Learning rate', yLabel: 'learning rate', lines: [{ column: 'train/lr', label: 'lr', colour: 'purple', smooth: false }] },
  { title: 'Gradient norm', yLabel: '‖g‖₂', lines: [{ column: 'train/grad_norm', label: 'grad norm', colour: 'red', smooth: true }] },
  { title: 'Throughput (tokens/s)', yLabel: 'tokens/s', lines: [{ column: 'train/tokens_per_s', label: 'tokens/s', colour: 'yellow', smooth: true }] },
];

export class TrainingView {
  readonly element: HTMLElement;
  private readonly charts: MetricChart[] = [];
  private readonly chartGrid: HTMLElement;
  private readonly picker: RunPicker;
  private stopping: string | undefined;
  private resuming: string | undefined;
  private queueKey = '';

  constructor(
    parent: HTMLElement,
    private readonly ctx: Context,
  ) {
    this.element = html(`
      <div class="training">
        <div class="toolbar run-bar"></div>
        <ul class="queue" aria-label="Queued jobs" hidden></ul>
        <header class="run-header">
          <div class="run-title"><span class="run-name"></span><span class="phase"></span></div>
          <div class="run-meta">
            <span class="stat" data-stat="backend"></span>
            <span class="stat" data-stat="steps"></span>
            <span class="stat" data-stat="elapsed"></span>
            <span class="stat" data-stat="eta"></span>
            <span class="stat" data-stat="rate"></span>
            <span class="stat" data-stat="loss" title="The last logged train loss, as the status bar and the notifications give it; the chart draws it faint, with its smoothed curve on top"></span>
            <span class="stat" data-stat="eval"></span>
          </div>
          <div class="run-actions">
            <vscode-button class="stop" secondary disabled>Stop</vscode-button>
            <vscode-button class="resume" hidden>Resume</vscode-button>
            <vscode-button class="rename" secondary title="Rename this run's folder">Rename…</vscode-button>
            <vscode-button class="delete" secondary title="Delete this run's folder">Delete…</vscode-button>
          </div>
        </header>
        <vscode-progress-bar class="progress" max="1" value="0"></vscode-progress-bar>
        <div class="banner" role="alert" hidden></div>
        <p class="empty"></p>
        <p class="waiting" hidden>Waiting for the first logged step: the curves start with it.</p>
        <div class="chart-grid"></div>
      </div>`);
    parent.append(this.element);
    $(this.element, '.empty').textContent = `No run yet. Start one with "${paletteTitles.startTraining}" from the command palette, or the "Train" lens above a config.`;
    this.picker = new RunPicker(ctx);
    $(this.element, '.run-bar').append(this.picker.element);
    this.chartGrid = $(this.element, '.chart-grid');
    $(this.element, '.stop').addEventListener('click', () => this.stop());
    $(this.element, '.resume').addEventListener('click', () => this.resume());
    $(this.element, '.rename').addEventListener('click', () => this.run && this.ctx.post({ type: 'renameRun', runId: this.run.runId }));
    $(this.element, '.delete').addEventListener('click', () => this.run && this.ctx.post({ type: 'deleteRun', runId: this.run.runId }));
    for (const known of KNOWN) this.addChart(known.title, known.yLabel, known.lines);
  }

  private get run(): RunData | undefined {
    return this.ctx.store.current;
  }

  private addChart(title: string, yLabel: string, lines: (typeof KNOWN)[number]['lines']): void {
    const chart = new Chart(this.chartGrid, { title, yLabel, sync: 'training' }, () => this.groups(lines));
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
    this.picker.update();
    this.updateQueue();
    $(this.element, '.empty').hidden = run !== undefined || this.ctx.store.queue.length > 0;
    $(this.element, '.run-header').hidden = run === undefined;
    if (run) {
      // a metric we do not know by name still gets a chart
      const shown = new Set(this.charts.flatMap((c) => c.columns));
      const colours: SeriesColour[] = ['blue', 'orange', 'green', 'purple', 'red', 'yellow'];
      for (const id of run.columns.keys()) {
        if (shown.has(id)) continue;
        const [kind, metric] = id.split('/') as ['train' | 'eval', string];
        this.addChart(`${metric} (${kind})`, metric, [{ column: id, label: metric, colour: colours[this.charts.length % colours.length]!, smooth: kind === 'train' }]);
        this.charts.at(-1)!.chart.rebuild();
      }
    }
    for (const { chart, columns } of this.charts) {
      chart.element.hidden = !run || !columns.some((c) => run.columns.has(c));
      if (!chart.element.hidden) chart.invalidate();
    }
    // a run that has started but logged nothing yet: say what comes, rather than an empty page
    $(this.element, '.waiting').hidden = !run || run.columns.size > 0 || !run.state || !ACTIVE.has(run.state.phase);
    this.updateHeader();
  }

  /** The jobs waiting for the running one, each with what it waits for and Cancel. */
  private updateQueue(): void {
    const queue = this.ctx.store.queue;
    const key = JSON.stringify(queue);
    if (key === this.queueKey) return;
    this.queueKey = key;
    const list = $(this.element, '.queue');
    list.hidden = queue.length === 0;
    list.replaceChildren(
      ...queue.map((job) => {
        const item = html(`<li class="queued-job"><span class="phase" data-phase="queued">queued</span> <span class="queued-name"></span> <span class="queued-reason"></span> <vscode-button class="cancel-queued" secondary>Cancel</vscode-button></li>`);
        $(item, '.queued-name').textContent = job.name;
        $(item, '.queued-reason').textContent = job.reason;
        item.dataset.jobKey = job.jobKey;
        $(item, '.cancel-queued').addEventListener('click', () => this.ctx.post({ type: 'cancelQueued', jobKey: job.jobKey }));
        return item;
      }),
    );
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
    const phase = $(this.element, '.run-header .phase');
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
    const loss = run?.lastLoss();
    stat('loss', loss !== undefined ? `loss ${formatNumber(loss)}` : '');
    const evalLoss = run?.last('eval', 'eval_loss');
    stat('eval', evalLoss !== undefined ? `eval loss ${formatNumber(evalLoss)}` : '');
    const progress = $<HTMLElement & { value: number }>(this.element, '.progress');
    progress.hidden = !total;
    progress.value = total ? Math.min(1, step / total) : 0;
    const stop = $<HTMLElement & { disabled: boolean }>(this.element, '.stop');
    if (this.stopping !== state?.runId || !active) this.stopping = undefined;
    stop.hidden = !state || !active;
    stop.disabled = !active || this.stopping !== undefined;
    stop.textContent = this.stopping ? 'Stopping…' : 'Stop';
    const resume = $<HTMLElement & { disabled: boolean }>(this.element, '.resume');
    const resumable = run !== undefined && run.resumable && !active;
    if (this.resuming !== run?.runId || !resumable) this.resuming = undefined;
    resume.hidden = !resumable;
    resume.disabled = this.resuming !== undefined;
    resume.textContent = this.resuming ? 'Resuming…' : 'Resume';
    for (const name of ['.rename', '.delete']) $<HTMLElement & { disabled: boolean }>(this.element, name).disabled = !run || active;
    const banner = $(this.element, '.banner');
    banner.hidden = !(state?.phase === 'failed' || (state?.phase === 'stopped' && state.reason));
    banner.dataset.kind = state?.phase ?? '';
    banner.textContent = state?.phase === 'failed' ? `Training failed: ${state.reason ?? 'no reason given'}` : (state?.reason ?? '');
  }

  private resume(): void {
    const run = this.run;
    if (!run?.resumable || this.resuming) return;
    this.resuming = run.runId;
    this.ctx.post({ type: 'resume', runId: run.runId });
    this.updateHeader();
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
