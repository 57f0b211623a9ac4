// The Compare tab: any runs overlaid on one metric, one colour per run (the theme's chart
// colours, then dashed), smoothed like the Training tab; a legend table with each run's final
// and best figures.
import { metricsCsv } from '../lib/csv';
import { formatCount, formatDuration, formatNumber } from '../../protocol/format';
import { currentPalette, SERIES_COLOURS, type Rgb } from '../lib/theme';
import type { RunData } from '../lib/store';
import { Chart, type LineGroup } from './chart';
import { $, html, type Context } from './context';
import { chartsPng, type LegendLine } from './png';
import { group, rawAndSmoothed, smoothed } from './series';
import { safeName } from './training';

const METRICS: { id: string; label: string }[] = [
  { id: 'train/loss', label: 'train loss' },
  { id: 'eval/eval_loss', label: 'eval loss' },
  { id: 'eval/accuracy', label: 'eval accuracy' },
  { id: 'train/lr', label: 'learning rate' },
  { id: 'train/grad_norm', label: 'gradient norm' },
  { id: 'train/tokens_per_s', label: 'tokens/s' },
];

const DASHES = [undefined, [6, 3], [2, 2], [10, 3, 2, 3]];

export class CompareView {
  readonly element: HTMLElement;
  private readonly chart: Chart;
  private readonly runList: HTMLElement;
  private readonly metricSelect: HTMLElement & { value: string };
  private readonly table: HTMLTableSectionElement;
  private runsKey = '';
  private metricsKey = '';
  private readonly requested = new Set<string>();

  constructor(
    parent: HTMLElement,
    private readonly ctx: Context,
  ) {
    this.element = html(`
      <div class="compare">
        <div class="compare-controls">
          <label class="control">Metric <vscode-single-select class="metric"></vscode-single-select></label>
          <div class="run-list" role="group" aria-label="Runs to compare"></div>
        </div>
        <div class="compare-chart"></div>
        <table class="compare-legend">
          <thead><tr><th></th><th>run</th><th>method</th><th>steps</th><th>final train loss (smoothed)</th><th>best eval loss</th><th>final eval loss</th><th>final accuracy</th><th>time</th></tr></thead>
          <tbody></tbody>
        </table>
        <p class="empty">No runs to compare yet.</p>
      </div>`);
    parent.append(this.element);
    this.runList = $(this.element, '.run-list');
    this.table = $(this.element, '.compare-legend tbody');
    this.metricSelect = $(this.element, '.metric');
    this.metricSelect.addEventListener('change', () => {
      this.ctx.ui.compareMetric = this.metricSelect.value;
      this.ctx.saveSoon();
      this.chart.setZoom(null);
      this.update();
    });
    this.chart = new Chart($(this.element, '.compare-chart'), { title: 'Compare', legend: false, height: 320 }, () => this.groups());
    this.chart.element.dataset.chart = 'compare';
  }

  private selected(): RunData[] {
    const runs = this.ctx.store.comparable();
    const ticked = this.ctx.ui.compareRuns;
    return ticked === null ? runs : runs.filter((r) => ticked.includes(r.runId));
  }

  /** A run keeps its colour while the list stays the same, ticked or not. */
  private colourOf(run: RunData): { colour: () => Rgb; dash: number[] | undefined } {
    const index = Math.max(0, this.ctx.store.comparable().indexOf(run));
    const name = SERIES_COLOURS[index % SERIES_COLOURS.length]!;
    return { colour: () => currentPalette().series[name], dash: DASHES[Math.floor(index / SERIES_COLOURS.length) % DASHES.length] };
  }

  private groups(): LineGroup[] {
    const metric = this.ctx.ui.compareMetric;
    const { xMode, smoothing } = this.ctx.ui;
    const isTrain = metric.startsWith('train/');
    return this.selected().flatMap((run) => {
      const column = run.columns.get(metric);
      if (!column) return [];
      const { colour, dash } = this.colourOf(run);
      const spec = { label: run.name, colour, ...(dash ? { dash } : {}) };
      return isTrain && metric !== 'train/lr'
        ? [rawAndSmoothed(column, xMode, smoothing, spec)]
        : [group(column, xMode, [column.values], [{ ...spec, points: !isTrain }])];
    });
  }

  update(): void {
    const runs = this.ctx.store.comparable();
    $(this.element, '.empty').hidden = runs.length > 0;
    this.updateMetricOptions(runs);
    this.updateRunList(runs);
    for (const run of this.selected()) {
      if (!run.loaded && !this.requested.has(run.runId)) {
        this.requested.add(run.runId);
        this.ctx.post({ type: 'requestRun', runId: run.runId });
      }
    }
    this.updateTable();
    this.chart.invalidate();
  }

  rebuild(): void {
    this.chart.xMode = this.ctx.ui.xMode;
    this.chart.logY = this.ctx.ui.logY;
    this.chart.setZoom(null);
    this.chart.rebuild();
    this.updateRunList(this.ctx.store.comparable(), true);
  }

  private updateMetricOptions(runs: RunData[]): void {
    const present = new Set(runs.flatMap((r) => [...r.columns.keys()]));
    const metrics = [...METRICS.filter((m) => present.has(m.id) || m.id === 'train/loss')];
    for (const id of [...present].sort()) if (!metrics.some((m) => m.id === id)) metrics.push({ id, label: id.replace('/', ' ') });
    const key = metrics.map((m) => m.id).join('|');
    if (key === this.metricsKey) return;
    this.metricsKey = key;
    this.metricSelect.replaceChildren(
      ...metrics.map((m) => {
        const option = document.createElement('vscode-option');
        option.setAttribute('value', m.id);
        option.textContent = m.label;
        return option;
      }),
    );
    if (!metrics.some((m) => m.id === this.ctx.ui.compareMetric)) this.ctx.ui.compareMetric = 'train/loss';
    this.metricSelect.value = this.ctx.ui.compareMetric;
  }

  private updateRunList(runs: RunData[], force = false): void {
    const key = runs.map((r) => `${r.runId}\u0000${r.name}`).join('\u0001');
    if (key === this.runsKey && !force) return;
    this.runsKey = key;
    const ticked = this.ctx.ui.compareRuns;
    this.runList.replaceChildren(
      ...runs.map((run) => {
        const row = html(`<label class="run-choice"><span class="swatch"></span><vscode-checkbox></vscode-checkbox></label>`);
        const { colour } = this.colourOf(run);
        $(row, '.swatch').style.background = `rgb(${colour().r}, ${colour().g}, ${colour().b})`;
        const box = $<HTMLElement & { checked: boolean; label: string }>(row, 'vscode-checkbox');
        box.label = run.method ? `${run.name} (${run.method})` : run.name;
        box.checked = ticked === null || ticked.includes(run.runId);
        box.dataset.runId = run.runId;
        box.addEventListener('change', () => {
          const all = this.ctx.store.comparable().map((r) => r.runId);
          const current = new Set(this.ctx.ui.compareRuns ?? all);
          if (box.checked) current.add(run.runId);
          else current.delete(run.runId);
          this.ctx.ui.compareRuns = all.filter((id) => current.has(id));
          this.ctx.saveSoon();
          this.update();
        });
        return row;
      }),
    );
  }

  private summary(run: RunData): string[] {
    const loss = run.column('train', 'loss');
    const finalLoss = loss?.length ? lastFinite(smoothed(loss, this.ctx.ui.smoothing)) : undefined;
    const steps = run.state?.step ?? Math.max(loss?.steps.at(-1) ?? 0, run.column('eval', 'eval_loss')?.steps.at(-1) ?? 0);
    const time = run.elapsedSeconds(Date.now());
    return [
      run.name,
      run.method ?? '',
      formatCount(steps),
      formatNumber(finalLoss),
      formatNumber(run.best('eval', 'eval_loss', true)),
      formatNumber(run.last('eval', 'eval_loss')),
      formatNumber(run.last('eval', 'accuracy')),
      time !== undefined ? formatDuration(time) : '–',
    ];
  }

  private updateTable(): void {
    this.table.replaceChildren(
      ...this.selected().map((run) => {
        const row = document.createElement('tr');
        const swatchCell = document.createElement('td');
        const swatch = document.createElement('span');
        swatch.className = 'swatch';
        const c = this.colourOf(run).colour();
        swatch.style.background = `rgb(${c.r}, ${c.g}, ${c.b})`;
        swatchCell.append(swatch);
        row.append(swatchCell);
        for (const text of this.summary(run)) {
          const cell = document.createElement('td');
          cell.textContent = text;
          row.append(cell);
        }
        row.dataset.runId = run.runId;
        return row;
      }),
    );
  }

  exportCsv(): { fileName: string; csv: string } | undefined {
    const runs = this.selected();
    if (!runs.length) return undefined;
    return { fileName: 'moslora-compare.csv', csv: metricsCsv(runs.map((r) => ({ name: r.name, records: r.records }))) };
  }

  exportPng(): { fileName: string; dataUrl: string } | undefined {
    const runs = this.selected();
    if (!runs.length) return undefined;
    const metric = METRICS.find((m) => m.id === this.ctx.ui.compareMetric)?.label ?? this.ctx.ui.compareMetric;
    const legend: LegendLine[] = runs.map((run) => {
      const [name, method, steps, finalLoss, bestEval, , accuracy, time] = this.summary(run);
      return {
        colour: this.colourOf(run).colour(),
        text: `${name}${method ? ` (${method})` : ''} · ${steps} steps · final train loss ${finalLoss} · best eval loss ${bestEval} · accuracy ${accuracy} · ${time}`,
      };
    });
    legend.push({ text: `smoothing ${this.ctx.ui.smoothing} · x: ${this.ctx.ui.xMode === 'wall' ? 'wall time' : 'step'}${this.ctx.ui.logY ? ' · log y' : ''}` });
    return { fileName: `moslora-compare-${safeName(metric)}.png`, dataUrl: chartsPng(`Compare: ${metric}`, [this.chart], legend, 1) };
  }
}

function lastFinite(values: readonly number[]): number | undefined {
  for (let i = values.length - 1; i >= 0; i--) if (Number.isFinite(values[i])) return values[i];
  return undefined;
}
