// The Compare tab: any runs overlaid on one metric, one colour per run (the theme's chart
// colours, then dashed), smoothed like the Training tab; a legend table with each run's final
// and best figures (and Rename, Delete), an A/B's methods each with a row of their seeds' mean
// (lowest–highest) above their runs, and the hyperparameters that differ between the runs
// shown. Everything shown is built from `selected()`, the runs ticked, in the list's order.
import { paletteTitles } from '../../protocol/commands';
import { metricsCsv } from '../lib/csv';
import { formatCount, formatDuration, formatNumber } from '../../protocol/format';
import { differingKeys, valueText } from '../lib/hyperparameters';
import { currentPalette, SERIES_COLOURS, type Rgb } from '../lib/theme';
import type { Column, RunData } from '../lib/store';
import { abGroups, abKey, abSeries, spread, type AbGroup } from '../lib/ab-series';
import { abLabel, abLineGroup, renderAbControls } from './ab-groups';
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

const ACTIVE = new Set(['queued', 'loading', 'training', 'saving']);

/** The legend table's columns after the swatch: what each run's row says (see summary). */
const COLUMNS = ['run', 'method', 'steps', 'final loss', 'best eval loss', 'final eval loss', 'accuracy', 'time'] as const;

/** What a run's row of the legend table says, as numbers. */
interface RunFigures {
  steps: number;
  finalLoss: number | undefined;
  bestEval: number | undefined;
  finalEval: number | undefined;
  accuracy: number | undefined;
  time: number | undefined;
}

export class CompareView {
  readonly element: HTMLElement;
  private readonly chart: Chart;
  private readonly runList: HTMLElement;
  private readonly metricSelect: HTMLElement & { value: string };
  private readonly table: HTMLTableSectionElement;
  private readonly hyperTable: HTMLTableElement;
  private runsKey = '';
  private metricsKey = '';

  constructor(
    parent: HTMLElement,
    private readonly ctx: Context,
  ) {
    this.element = html(`
      <div class="compare">
        <div class="compare-body">
          <div class="compare-controls">
            <label class="control">Metric <vscode-single-select class="metric"></vscode-single-select></label>
            <div class="run-list" role="group" aria-label="Runs to compare"></div>
            <div class="ab-controls" hidden></div>
          </div>
          <div class="compare-chart"></div>
          <div class="table-scroll">
            <table class="compare-legend">
              <thead><tr><th></th>${COLUMNS.map((c) => `<th>${c}</th>`).join('')}<th></th></tr></thead>
              <tbody></tbody>
            </table>
          </div>
          <section class="hyperparameters">
            <h3>Hyperparameters that differ</h3>
            <p class="hyper-note"></p>
            <div class="table-scroll"><table class="compare-hyper"></table></div>
          </section>
        </div>
        <p class="empty"></p>
      </div>`);
    parent.append(this.element);
    $(this.element, '.empty').textContent = `No runs to compare yet. Each run appears here as it starts: start one with "${paletteTitles.startTraining}".`;
    this.runList = $(this.element, '.run-list');
    this.table = $(this.element, '.compare-legend tbody');
    this.hyperTable = $(this.element, '.compare-hyper');
    this.metricSelect = $(this.element, '.metric');
    this.metricSelect.addEventListener('change', () => {
      this.ctx.ui.compareMetric = this.metricSelect.value;
      this.ctx.saveSoon();
      this.rebuild();
      this.update();
    });
    this.chart = new Chart($(this.element, '.compare-chart'), { title: 'Compare', yLabel: this.metricLabel(), legend: false, height: 320 }, () => this.groups());
    this.chart.element.dataset.chart = 'compare';
  }

  private metricLabel(): string {
    return METRICS.find((m) => m.id === this.ctx.ui.compareMetric)?.label ?? this.ctx.ui.compareMetric.replace('/', ' ');
  }

  private selected(): RunData[] {
    const runs = this.ctx.store.comparable();
    const ticked = this.ctx.ui.compareRuns;
    return ticked === null ? runs : runs.filter((r) => ticked.includes(r.runId));
  }

  /** A run keeps its colour while the list stays the same, ticked or not; an A/B's runs of one method take the first one's. */
  private colourOf(run: RunData): { colour: () => Rgb; dash: number[] | undefined } {
    const runs = this.ctx.store.comparable();
    const key = this.ctx.ui.compareAbSingle ? undefined : abKey(run);
    const index = Math.max(0, key ? runs.findIndex((r) => abKey(r) === key) : runs.indexOf(run));
    const name = SERIES_COLOURS[index % SERIES_COLOURS.length]!;
    return { colour: () => currentPalette().series[name], dash: DASHES[Math.floor(index / SERIES_COLOURS.length) % DASHES.length] };
  }

  private groups(): LineGroup[] {
    const metric = this.ctx.ui.compareMetric;
    const { xMode, smoothing } = this.ctx.ui;
    const isTrain = metric.startsWith('train/');
    const grouped = !this.ctx.ui.compareAbSingle;
    // train metrics averaged as Compare shows them: after smoothing; the rest as logged
    const valuesOf = isTrain && metric !== 'train/lr' && smoothing > 0 ? (column: Column) => smoothed(column, smoothing) : undefined;
    const abLines = grouped ? abSeries(this.selected(), metric, valuesOf).map((series) => abLineGroup(series, xMode, this.colourOf(series.runs[0]!))) : [];
    return abLines.concat(this.selected().flatMap((run) => {
      if (grouped && run.ab) return [];
      const column = run.columns.get(metric);
      if (!column) return [];
      const { colour, dash } = this.colourOf(run);
      const spec = { label: run.name, colour, ...(dash ? { dash } : {}) };
      return isTrain && metric !== 'train/lr'
        ? [rawAndSmoothed(column, xMode, smoothing, spec)]
        : [group(column, xMode, [column.values], [{ ...spec, points: !isTrain }])];
    }));
  }

  update(): void {
    const runs = this.ctx.store.comparable();
    // no runs: say so, rather than an empty chart with a made-up range
    $(this.element, '.empty').hidden = runs.length > 0;
    $(this.element, '.compare-body').hidden = runs.length === 0;
    if (!runs.length) return;
    this.updateMetricOptions(runs);
    this.updateRunList(runs);
    renderAbControls($(this.element, '.ab-controls'), runs, this.ctx.ui.compareAbSingle, {
      toggle: (single) => {
        this.ctx.ui.compareAbSingle = single;
        this.ctx.saveSoon();
        this.rebuild();
        this.update();
      },
      open: (runId) => this.ctx.post({ type: 'openAbReport', runId }),
    });
    for (const run of this.selected()) this.ctx.ensure(run.runId);
    this.updateTable();
    this.updateHyperparameters();
    this.chart.invalidate();
  }

  rebuild(): void {
    this.chart.yLabel = this.metricLabel();
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

  /** A run's row of the legend table, one text per COLUMNS entry. The loss is the last logged one (raw). */
  private summary(run: RunData): string[] {
    const figures = this.figures(run);
    return [run.name, run.method ?? '', formatCount(figures.steps), ...[figures.finalLoss, figures.bestEval, figures.finalEval, figures.accuracy].map(formatNumber), figures.time !== undefined ? formatDuration(figures.time) : '–'];
  }

  private figures(run: RunData): RunFigures {
    const loss = run.column('train', 'loss');
    return {
      steps: run.state?.step ?? Math.max(loss?.steps.at(-1) ?? 0, run.column('eval', 'eval_loss')?.steps.at(-1) ?? 0),
      finalLoss: run.lastLoss(),
      bestEval: run.best('eval', 'eval_loss', true),
      finalEval: run.last('eval', 'eval_loss'),
      accuracy: run.last('eval', 'accuracy'),
      time: run.elapsedSeconds(Date.now()),
    };
  }

  /**
   * An A/B method's row, one text per COLUMNS entry: each figure as the mean over its runs, with
   * the lowest and highest where they differ ("0.4123 (0.4101–0.4150)").
   */
  private groupSummary(group: AbGroup): string[] {
    const all = group.runs.map((run) => this.figures(run));
    const text = (pick: (f: RunFigures) => number | undefined, format: (value: number) => string) => {
      const s = spread(all.map(pick));
      if (!s) return '–';
      return s.min === s.max ? format(s.mean) : `${format(s.mean)} (${format(s.min)}–${format(s.max)})`;
    };
    return [
      abLabel(group),
      group.method,
      text((f) => f.steps, formatCount),
      text((f) => f.finalLoss, formatNumber),
      text((f) => f.bestEval, formatNumber),
      text((f) => f.finalEval, formatNumber),
      text((f) => f.accuracy, formatNumber),
      text((f) => f.time, formatDuration),
    ];
  }

  private swatch(run: RunData): HTMLElement {
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    const c = this.colourOf(run).colour();
    swatch.style.background = `rgb(${c.r}, ${c.g}, ${c.b})`;
    return swatch;
  }

  /** The A/B methods among `runs` as they are drawn: none unless grouped ("Show A/B runs as single runs" off). */
  private abGroupsDrawn(runs: readonly RunData[]): AbGroup[] {
    return this.ctx.ui.compareAbSingle ? [] : abGroups(runs);
  }

  /** The runs' rows in the list's order; drawn grouped, an A/B's method has its row, its runs right below it. */
  private updateTable(): void {
    const runs = this.selected();
    const groups = this.abGroupsDrawn(runs);
    const groupOf = new Map(groups.flatMap((g) => g.runs.map((run) => [run.runId, g] as const)));
    const shown = new Set<AbGroup>();
    this.table.replaceChildren(
      ...runs.flatMap((run) => {
        const group = groupOf.get(run.runId);
        if (!group) return [this.runRow(run)];
        if (shown.has(group)) return [];
        shown.add(group);
        return [this.groupRow(group), ...group.runs.map((r) => this.runRow(r))];
      }),
    );
  }

  private row(swatchOf: RunData, texts: string[]): HTMLTableRowElement {
    const row = document.createElement('tr');
    const swatchCell = document.createElement('td');
    swatchCell.append(this.swatch(swatchOf));
    row.append(swatchCell);
    for (const text of texts) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  }

  private groupRow(group: AbGroup): HTMLTableRowElement {
    const row = this.row(group.runs[0]!, this.groupSummary(group));
    row.className = 'ab-summary';
    row.title = `${group.method} in the A/B ${group.ab}: the mean over its ${group.runs.length} runs shown, and their lowest–highest`;
    row.dataset.ab = group.ab;
    row.dataset.method = group.method;
    row.append(document.createElement('td'));
    return row;
  }

  private runRow(run: RunData): HTMLTableRowElement {
    const row = this.row(run, this.summary(run));
    // rename and delete: never a run that trains or waits to (the extension checks again)
    const actions = html(`<td class="row-actions"><button type="button" class="link rename">Rename…</button> <button type="button" class="link delete">Delete…</button></td>`);
    const busy = run.state !== undefined && ACTIVE.has(run.state.phase);
    for (const button of actions.querySelectorAll('button')) {
      button.disabled = busy;
      button.addEventListener('click', () => this.ctx.post({ type: button.classList.contains('rename') ? 'renameRun' : 'deleteRun', runId: run.runId }));
    }
    row.append(actions);
    row.dataset.runId = run.runId;
    return row;
  }

  /** One row per hyperparameter whose value differs between the runs shown, one column per run. */
  private updateHyperparameters(): void {
    const runs = this.selected();
    const configured = runs.filter((run) => run.hyperparameters);
    const keys = differingKeys(runs);
    const note = $(this.element, '.hyper-note');
    note.textContent =
      configured.length < 2
        ? 'Tick two runs with a config.yaml to see how their settings differ.'
        : keys.length === 0
          ? `The ${configured.length} runs shown share every setting of their config.yaml.`
          : `${keys.length} of their config.yaml's settings differ (the rest are the same).`;
    if (!keys.length) {
      this.hyperTable.replaceChildren();
      return;
    }
    const head = document.createElement('tr');
    head.append(document.createElement('th'));
    for (const run of configured) {
      const th = document.createElement('th');
      th.append(this.swatch(run), ` ${run.name}`);
      head.append(th);
    }
    const body = keys.map((key) => {
      const row = document.createElement('tr');
      row.dataset.key = key;
      const name = document.createElement('th');
      name.scope = 'row';
      name.textContent = key;
      row.append(name);
      for (const run of configured) {
        const cell = document.createElement('td');
        cell.textContent = valueText(run.hyperparameters, key);
        row.append(cell);
      }
      return row;
    });
    const thead = document.createElement('thead');
    thead.append(head);
    const tbody = document.createElement('tbody');
    tbody.append(...body);
    this.hyperTable.replaceChildren(thead, tbody);
  }

  exportCsv(): { fileName: string; csv: string } | undefined {
    const runs = this.selected();
    if (!runs.length) return undefined;
    return { fileName: 'moslora-compare.csv', csv: metricsCsv(runs.map((r) => ({ name: r.name, records: r.records }))) };
  }

  exportPng(): { fileName: string; dataUrl: string } | undefined {
    const runs = this.selected();
    if (!runs.length) return undefined;
    const metric = this.metricLabel();
    // drawn grouped, an A/B's method is one line of the legend, as it is one line of the chart
    const groups = this.abGroupsDrawn(runs);
    const grouped = new Set(groups.flatMap((g) => g.runs.map((run) => run.runId)));
    const line = (of: RunData, [, , steps, finalLoss, bestEval, , accuracy, time]: string[], named: string): LegendLine => ({
      colour: this.colourOf(of).colour(),
      text: `${named} · ${steps} steps · final loss ${finalLoss} · best eval loss ${bestEval} · accuracy ${accuracy} · ${time}`,
    });
    const legend: LegendLine[] = [
      ...groups.map((g) => line(g.runs[0]!, this.groupSummary(g), abLabel(g))),
      ...runs.filter((run) => !grouped.has(run.runId)).map((run) => {
        const texts = this.summary(run);
        return line(run, texts, `${texts[0]}${texts[1] ? ` (${texts[1]})` : ''}`);
      }),
    ];
    legend.push({ text: `smoothing ${this.ctx.ui.smoothing} · x: ${this.ctx.ui.xMode === 'wall' ? 'wall time' : 'step'}${this.ctx.ui.logY ? ' · log y' : ''}` });
    return { fileName: `moslora-compare-${safeName(metric)}.png`, dataUrl: chartsPng(`Compare: ${metric}`, [this.chart], legend, 1) };
  }
}
