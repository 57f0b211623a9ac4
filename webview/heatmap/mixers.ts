// The Mixers tab: the learned r×r mixer M of each adapted module as a heatmap (diverging, centred
// at 0, symmetric limits shared over the snapshots shown, so scrubbing compares like with like),
// or a grid of small multiples (rows: layers, columns: modules). A step slider and Play scrub
// through the snapshots; beside the heatmap, ‖M − I‖_F over steps and the singular values.
// "M − M₀" shows what training changed since the first snapshot. The run comes from the run
// picker; a LoRA run (no mixer) says so and offers the runs that have one.
import { formatCount, formatNumber } from '../../protocol/format';
import { css, currentPalette, type Rgb } from '../lib/theme';
import type { RunData } from '../lib/store';
import { Chart } from '../panel/chart';
import { $, html, type Context } from '../panel/context';
import { RunPicker, runLabel } from '../panel/picker';
import { diverging, frobenius, splitModule, subtract, symmetricLimit } from './colormap';
import type { MixerSnapshot } from '../../protocol/records';

const PLAY_INTERVAL_MS = 250;

/** Methods that learn no mixer: their runs log no snapshots. */
const NO_MIXER = new Set(['lora']);
/** A heatmap cell of the all-modules grid, in CSS pixels: at least 2, at most 14. */
const GRID_CELL = { min: 2, max: 14 } as const;
/** Room the grid keeps beside its cells: the layer column, the colour bar, paddings. */
const GRID_CHROME_PX = 150;
/** Horizontal padding of a grid cell (two × the td padding, and its outline). */
const GRID_CELL_PADDING_PX = 10;

export class MixersView {
  readonly element: HTMLElement;
  private readonly layerSelect: HTMLElement & { value: string };
  private readonly kindSelect: HTMLElement & { value: string };
  private readonly viewSelect: HTMLElement & { value: string };
  private readonly diffBox: HTMLElement & { checked: boolean };
  private readonly slider: HTMLInputElement;
  private readonly playButton: HTMLElement;
  private readonly tooltip: HTMLElement;
  private readonly single: HTMLElement;
  private readonly grid: HTMLElement;
  private readonly heatmap: HTMLCanvasElement;
  private readonly colourbar: HTMLCanvasElement;
  private readonly bars: HTMLCanvasElement;
  private readonly distanceChart: Chart;
  private readonly picker: RunPicker;
  private steps: number[] = [];
  private choicesKey = '';
  private playing: ReturnType<typeof setInterval> | undefined;
  private optionsKey = '';
  private runVersion = -1;
  private runId: string | undefined;

  constructor(
    parent: HTMLElement,
    private readonly ctx: Context,
  ) {
    this.element = html(`
      <div class="mixers">
        <div class="toolbar run-bar"></div>
        <div class="toolbar view-controls">
          <label class="control">View
            <vscode-single-select class="view">
              <vscode-option value="single">One module</vscode-option>
              <vscode-option value="grid">All modules</vscode-option>
            </vscode-single-select>
          </label>
          <label class="control single-only">Layer <vscode-single-select class="layer"></vscode-single-select></label>
          <label class="control single-only">Module <vscode-single-select class="kind"></vscode-single-select></label>
          <vscode-checkbox class="diff" label="Show M − M₀ (change since the first snapshot)"></vscode-checkbox>
        </div>
        <div class="scrubber">
          <vscode-button class="play" secondary>Play</vscode-button>
          <input class="step" type="range" min="0" max="0" value="0" aria-label="Snapshot">
          <span class="step-label"></span>
        </div>
        <div class="no-mixer" hidden>
          <p class="empty"></p>
          <div class="mixer-runs" role="group" aria-label="Runs with mixers"></div>
        </div>
        <div class="mixer-single">
          <div class="heatmap-box">
            <div class="heatmap-title"></div>
            <div class="heatmap-row">
              <canvas class="heatmap" role="img"></canvas>
              <canvas class="colourbar" aria-hidden="true"></canvas>
            </div>
          </div>
          <div class="mixer-side">
            <div class="figures">
              <div><span class="figure-label">‖M − I‖<sub>F</sub></span> <span class="figure" data-figure="distance"></span></div>
              <div><span class="figure-label">‖M − M₀‖<sub>F</sub></span> <span class="figure" data-figure="change"></span></div>
            </div>
            <div class="distance-chart"></div>
            <h3>Singular values of M</h3>
            <canvas class="bars" role="img"></canvas>
          </div>
        </div>
        <div class="mixer-grid"></div>
        <div class="mixer-tooltip" role="tooltip" hidden></div>
      </div>`);
    parent.append(this.element);
    this.picker = new RunPicker(ctx, (run) => (run.method && NO_MIXER.has(run.method) ? ' (no mixer)' : ''));
    $(this.element, '.run-bar').append(this.picker.element);
    this.layerSelect = $(this.element, '.layer');
    this.kindSelect = $(this.element, '.kind');
    this.viewSelect = $(this.element, '.view');
    this.diffBox = $(this.element, '.diff');
    this.slider = $(this.element, '.step');
    this.playButton = $(this.element, '.play');
    this.tooltip = $(this.element, '.mixer-tooltip');
    this.single = $(this.element, '.mixer-single');
    this.grid = $(this.element, '.mixer-grid');
    this.heatmap = $(this.element, '.heatmap');
    this.colourbar = $(this.element, '.colourbar');
    this.bars = $(this.element, '.bars');
    this.distanceChart = new Chart(
      $(this.element, '.distance-chart'),
      { title: 'Distance from identity ‖M − I‖ (Frobenius) over steps', yLabel: '‖M − I‖_F', legend: false, height: 140, marker: () => this.currentStep() },
      () => this.distanceGroups(),
    );

    const mixerUi = this.ctx.ui.mixer;
    this.viewSelect.value = mixerUi.view;
    this.diffBox.checked = mixerUi.diff;
    this.viewSelect.addEventListener('change', () => {
      mixerUi.view = this.viewSelect.value === 'grid' ? 'grid' : 'single';
      this.changed();
    });
    this.diffBox.addEventListener('change', () => {
      mixerUi.diff = this.diffBox.checked;
      this.changed();
    });
    this.layerSelect.addEventListener('change', () => this.pickModule(this.layerSelect.value, this.kindSelect.value));
    this.kindSelect.addEventListener('change', () => this.pickModule(this.layerSelect.value, this.kindSelect.value));
    this.slider.addEventListener('input', () => {
      const index = Number(this.slider.value);
      mixerUi.step = index >= this.steps.length - 1 ? null : (this.steps[index] ?? null);
      this.changed();
    });
    this.playButton.addEventListener('click', () => this.togglePlay());
    // sizes follow the panel (and are right once the tab is first shown); drawn on the next
    // frame, as drawing inside the callback changes the layout it reports on
    new ResizeObserver(() => requestAnimationFrame(() => this.draw())).observe(this.element);
    for (const canvas of [this.heatmap, this.grid]) {
      canvas.addEventListener('pointermove', (event) => this.hover(event));
      canvas.addEventListener('pointerleave', () => (this.tooltip.hidden = true));
    }
    this.grid.addEventListener('click', (event) => {
      const module = (event.target as HTMLElement).closest<HTMLElement>('[data-module]')?.dataset.module;
      if (!module) return;
      mixerUi.module = module;
      mixerUi.view = 'single';
      this.viewSelect.value = 'single';
      this.changed();
    });
  }

  private get run(): RunData | undefined {
    return this.ctx.store.current;
  }

  private changed(): void {
    this.ctx.saveSoon();
    this.draw();
  }

  /** New snapshots or a new run. */
  update(): void {
    const run = this.run;
    this.picker.update();
    this.updateChoices();
    if (run?.runId === this.runId && run?.version === this.runVersion) return;
    this.runId = run?.runId;
    this.runVersion = run?.version ?? -1;
    this.steps = run?.mixerSteps() ?? [];
    this.updateModuleOptions();
    this.draw();
  }

  rebuild(): void {
    this.distanceChart.rebuild();
    this.draw();
  }

  private modules(): string[] {
    return [...(this.run?.mixers.keys() ?? [])].sort(compareModules);
  }

  private updateModuleOptions(): void {
    const modules = this.modules();
    const ui = this.ctx.ui.mixer;
    if (!ui.module || !modules.includes(ui.module)) ui.module = modules[0];
    const key = modules.join('|');
    if (key !== this.optionsKey) {
      this.optionsKey = key;
      const layers = [...new Set(modules.map((m) => splitModule(m).layer))];
      setOptions(this.layerSelect, layers.map((l) => [l, l === '' ? '–' : l]));
    }
    this.syncSelects();
  }

  /** Layer and module selects follow the chosen module (the kinds depend on the layer). */
  private syncSelects(): void {
    const module = this.ctx.ui.mixer.module;
    if (!module) return;
    const { layer, kind } = splitModule(module);
    const kinds = this.modules()
      .map(splitModule)
      .filter((m) => m.layer === layer)
      .map((m) => m.kind);
    const key = kinds.join('|');
    if (this.kindSelect.dataset.key !== key) {
      this.kindSelect.dataset.key = key;
      setOptions(this.kindSelect, kinds.map((k) => [k, k]));
    }
    this.layerSelect.value = layer;
    this.kindSelect.value = kind;
  }

  private pickModule(layer: string, kind: string): void {
    const modules = this.modules();
    const exact = modules.find((m) => splitModule(m).layer === layer && splitModule(m).kind === kind);
    // a layer without that module kind: its first module
    this.ctx.ui.mixer.module = exact ?? modules.find((m) => splitModule(m).layer === layer) ?? modules[0];
    this.syncSelects();
    this.changed();
  }

  private stepIndex(): number {
    const step = this.ctx.ui.mixer.step;
    if (step === null || !this.steps.length) return Math.max(0, this.steps.length - 1);
    // the last snapshot step at or before the chosen one
    let index = 0;
    while (index + 1 < this.steps.length && this.steps[index + 1]! <= step) index++;
    return index;
  }

  private currentStep(): number | undefined {
    return this.steps[this.stepIndex()];
  }

  /** The module's snapshot at the current step (its latest at or before it), and its first. */
  private snapshotAt(module: string): { now: MixerSnapshot; first: MixerSnapshot } | undefined {
    const list = this.run?.mixers.get(module);
    const step = this.currentStep();
    if (!list?.length || step === undefined) return undefined;
    let now = list[0]!;
    for (const s of list) if (s.step <= step) now = s;
    return { now, first: list[0]! };
  }

  private shown(snapshot: { now: MixerSnapshot; first: MixerSnapshot }): (number | null)[] {
    return this.ctx.ui.mixer.diff ? subtract(snapshot.now.values, snapshot.first.values) : snapshot.now.values;
  }

  /** The colour limit: the largest |value| over every snapshot of the modules on screen. */
  private limit(modules: string[]): number {
    const diff = this.ctx.ui.mixer.diff;
    const matrices: (number | null)[][] = [];
    for (const module of modules) {
      const list = this.run?.mixers.get(module) ?? [];
      for (const s of list) matrices.push(diff ? subtract(s.values, list[0]!.values) : s.values);
    }
    return symmetricLimit(matrices);
  }

  /** Without snapshots: why (a LoRA run has no mixer; a young run has logged none yet), and the runs that have some. */
  private updateChoices(): void {
    const run = this.run;
    const lora = run?.method !== undefined && NO_MIXER.has(run.method);
    const others = lora ? this.ctx.store.newestFirst().filter((r) => r !== run && !(r.method && NO_MIXER.has(r.method))) : [];
    const text = !run
      ? 'No run yet: a MoSLoRA run logs its mixers as it trains.'
      : lora
        ? `${run.name} is a ${run.method} run: it learns no mixer (M stays I) and logs no snapshots. ${others.length ? 'Runs with mixers:' : 'No run here has one yet: train a config with method: moslora.'}`
        : 'No mixer snapshots yet: a MoSLoRA run logs them every training.mixer_interval steps, the first at step 0.';
    const key = JSON.stringify([text, others.map((r) => [r.runId, runLabel(r)])]);
    if (key === this.choicesKey) return;
    this.choicesKey = key;
    $(this.element, '.no-mixer .empty').textContent = text;
    $(this.element, '.mixer-runs').replaceChildren(
      ...others.slice(0, 8).map((other) => {
        const button = html(`<vscode-button class="mixer-run" secondary></vscode-button>`);
        button.textContent = runLabel(other);
        button.dataset.runId = other.runId;
        button.addEventListener('click', () => this.ctx.show(other.runId));
        return button;
      }),
    );
  }

  draw(): void {
    const ui = this.ctx.ui.mixer;
    const has = this.steps.length > 0;
    $(this.element, '.no-mixer').hidden = has;
    this.single.hidden = !has || ui.view !== 'single';
    this.grid.hidden = !has || ui.view !== 'grid';
    $(this.element, '.scrubber').hidden = !has;
    $(this.element, '.view-controls').hidden = !has;
    for (const el of this.element.querySelectorAll<HTMLElement>('.single-only')) el.hidden = ui.view !== 'single';
    if (!has) return;
    const index = this.stepIndex();
    this.slider.max = String(this.steps.length - 1);
    this.slider.value = String(index);
    $(this.element, '.step-label').textContent =
      `step ${formatCount(this.steps[index]!)} · snapshot ${index + 1} of ${this.steps.length}${ui.step === null ? ' (following)' : ''}`;
    if (ui.view === 'single') this.drawSingle();
    else this.drawGrid();
  }

  private drawSingle(): void {
    const module = this.ctx.ui.mixer.module;
    const snapshot = module ? this.snapshotAt(module) : undefined;
    if (!module || !snapshot) return;
    const values = this.shown(snapshot);
    const limit = this.limit([module]);
    const r = snapshot.now.r;
    const available = Math.min(420, Math.max(160, this.single.clientWidth - 360));
    const cell = Math.max(2, Math.floor(available / r));
    drawMatrix(this.heatmap, values, r, cell, limit);
    this.heatmap.dataset.module = module;
    this.heatmap.dataset.step = String(snapshot.now.step);
    this.heatmap.setAttribute('aria-label', `${this.ctx.ui.mixer.diff ? 'M − M₀' : 'M'} of ${module} at step ${snapshot.now.step}, ${r}×${r}`);
    drawColourbar(this.colourbar, cell * r, limit);
    $(this.element, '.heatmap-title').textContent = `${module} · r = ${r} · step ${formatCount(snapshot.now.step)} · ${this.ctx.ui.mixer.diff ? 'M − M₀' : 'M'}`;
    $(this.element, '[data-figure="distance"]').textContent = formatNumber(snapshot.now.distanceFromIdentity);
    $(this.element, '[data-figure="change"]').textContent = formatNumber(frobenius(subtract(snapshot.now.values, snapshot.first.values)));
    drawBars(this.bars, snapshot.now.singularValues);
    this.distanceChart.invalidate();
  }

  private distanceGroups(): import('../panel/chart').LineGroup[] {
    const module = this.ctx.ui.mixer.module;
    const list = module ? this.run?.mixers.get(module) : undefined;
    if (!list?.length) return [];
    return [
      {
        x: list.map((s) => s.step),
        ys: [list.map((s) => s.distanceFromIdentity ?? Number.NaN)],
        specs: [{ label: '‖M − I‖_F', colour: () => currentPalette().series.purple, points: list.length < 60 }],
      },
    ];
  }

  private drawGrid(): void {
    const modules = this.modules();
    const limit = this.limit(modules);
    const layers = [...new Set(modules.map((m) => splitModule(m).layer))];
    const kinds = [...new Set(modules.map((m) => splitModule(m).kind))];
    const r = Math.max(...modules.map((m) => this.run!.mixers.get(m)![0]!.r));
    // every module kind side by side in the width there is (the panel beside an editor is narrow)
    const perKind = (this.element.clientWidth - GRID_CHROME_PX) / Math.max(1, kinds.length) - GRID_CELL_PADDING_PX;
    const cell = Math.max(GRID_CELL.min, Math.min(GRID_CELL.max, Math.floor(120 / r), Math.floor(perKind / r)));
    this.grid.dataset.cellPx = String(cell);
    const key = JSON.stringify([layers, kinds]);
    if (this.grid.dataset.key !== key) {
      this.grid.dataset.key = key;
      const table = document.createElement('table');
      const head = table.createTHead().insertRow();
      head.insertCell().textContent = 'layer';
      for (const kind of kinds) {
        // `q_proj` says it; `self_attn.q_proj` in the tooltip
        const cell = head.insertCell();
        cell.textContent = kind.split('.').at(-1)!;
        cell.title = kind;
      }
      for (const layer of layers) {
        const row = table.insertRow();
        row.insertCell().textContent = layer || '–';
        for (const kind of kinds) {
          const td = row.insertCell();
          const module = modules.find((m) => splitModule(m).layer === layer && splitModule(m).kind === kind);
          if (!module) continue;
          const canvas = document.createElement('canvas');
          canvas.dataset.module = module;
          canvas.title = module;
          td.append(canvas);
        }
      }
      const bar = document.createElement('canvas');
      bar.className = 'colourbar';
      this.grid.replaceChildren(table, bar);
    }
    drawColourbar(this.grid.querySelector<HTMLCanvasElement>('canvas.colourbar')!, 160, limit);
    for (const canvas of this.grid.querySelectorAll<HTMLCanvasElement>('canvas[data-module]')) {
      const snapshot = this.snapshotAt(canvas.dataset.module!);
      if (snapshot) drawMatrix(canvas, this.shown(snapshot), snapshot.now.r, cell, limit);
    }
  }

  private hover(event: PointerEvent): void {
    const canvas = event.target;
    if (!(canvas instanceof HTMLCanvasElement) || !canvas.dataset.r) return;
    const r = Number(canvas.dataset.r);
    const cell = Number(canvas.dataset.cellPx);
    const rect = canvas.getBoundingClientRect();
    const j = Math.floor((event.clientX - rect.left) / cell);
    const i = Math.floor((event.clientY - rect.top) / cell);
    const module = canvas === this.heatmap ? this.ctx.ui.mixer.module : canvas.dataset.module;
    const snapshot = module ? this.snapshotAt(module) : undefined;
    if (!snapshot || i < 0 || j < 0 || i >= r || j >= r) {
      this.tooltip.hidden = true;
      return;
    }
    const value = this.shown(snapshot)[i * r + j];
    const name = this.ctx.ui.mixer.diff ? 'ΔM' : 'M';
    this.tooltip.textContent = `${module}\n${name}[${i}, ${j}] = ${value == null ? 'not finite' : value.toPrecision(4)}`;
    this.tooltip.hidden = false;
    // beside the pointer, on whichever side keeps it inside the panel
    const host = this.element.getBoundingClientRect();
    const x = event.clientX - host.left;
    const width = this.tooltip.offsetWidth;
    const right = x + 14 + width <= Math.min(host.width, document.documentElement.clientWidth - host.left);
    this.tooltip.style.left = `${Math.max(0, right ? x + 14 : x - 14 - width)}px`;
    this.tooltip.style.top = `${event.clientY - host.top + 14}px`;
  }

  private togglePlay(): void {
    if (this.playing !== undefined) return this.stopPlaying();
    const ui = this.ctx.ui.mixer;
    if (this.stepIndex() >= this.steps.length - 1) ui.step = this.steps[0] ?? null;
    this.playButton.textContent = 'Pause';
    this.playing = setInterval(() => {
      const next = this.stepIndex() + 1;
      // the newest snapshot: stop there, following it (new snapshots keep it moving)
      ui.step = next >= this.steps.length - 1 ? null : this.steps[next]!;
      if (ui.step === null) this.stopPlaying();
      this.draw();
    }, PLAY_INTERVAL_MS);
    this.draw();
  }

  private stopPlaying(): void {
    clearInterval(this.playing);
    this.playing = undefined;
    this.playButton.textContent = 'Play';
    this.ctx.saveSoon();
  }
}

function setOptions(select: HTMLElement & { value: string }, options: [string, string][]): void {
  select.replaceChildren(
    ...options.map(([value, label]) => {
      const option = document.createElement('vscode-option');
      option.setAttribute('value', value);
      option.textContent = label;
      return option;
    }),
  );
}

/** Layers numerically, then module kinds by name. */
function compareModules(a: string, b: string): number {
  const x = splitModule(a);
  const y = splitModule(b);
  return Number(x.layer) - Number(y.layer) || x.layer.localeCompare(y.layer) || x.kind.localeCompare(y.kind);
}

interface Colours {
  negative: Rgb;
  neutral: Rgb;
  positive: Rgb;
}

function colours(): Colours {
  const p = currentPalette();
  return { negative: p.series.blue, neutral: p.background, positive: p.series.red };
}

function sized(canvas: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D {
  const dpr = devicePixelRatio || 1;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** Row i, column j of M at (j·cell, i·cell): rows down, as the matrix is written. */
function drawMatrix(canvas: HTMLCanvasElement, values: readonly (number | null)[], r: number, cell: number, limit: number): void {
  const ctx = sized(canvas, r * cell, r * cell);
  const { negative, neutral, positive } = colours();
  const foreground = currentPalette().foreground;
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      const v = values[i * r + j];
      ctx.fillStyle = v == null ? css(foreground, 0.5) : css(diverging(v, limit, negative, neutral, positive));
      ctx.fillRect(j * cell, i * cell, cell, cell);
    }
  }
  canvas.dataset.r = String(r);
  canvas.dataset.cellPx = String(cell);
  canvas.dataset.limit = String(limit);
}

function drawColourbar(canvas: HTMLCanvasElement, height: number, limit: number): void {
  const width = 64;
  const barWidth = 12;
  const ctx = sized(canvas, width, height);
  const { negative, neutral, positive } = colours();
  const p = currentPalette();
  for (let y = 0; y < height; y++) {
    const v = limit * (1 - (2 * (y + 0.5)) / height);
    ctx.fillStyle = css(diverging(v, limit, negative, neutral, positive));
    ctx.fillRect(0, y, barWidth, 1);
  }
  ctx.strokeStyle = p.grid;
  ctx.strokeRect(0.5, 0.5, barWidth - 1, height - 1);
  ctx.fillStyle = css(p.foreground);
  ctx.font = p.font;
  ctx.textBaseline = 'top';
  ctx.fillText(`+${formatNumber(limit)}`, barWidth + 4, 0);
  ctx.textBaseline = 'middle';
  ctx.fillText('0', barWidth + 4, height / 2);
  ctx.textBaseline = 'bottom';
  ctx.fillText(`−${formatNumber(limit)}`, barWidth + 4, height);
}

/** Singular values as bars, with the identity's σ = 1 as a dashed line. */
function drawBars(canvas: HTMLCanvasElement, values: readonly (number | null)[]): void {
  const width = 260;
  const height = 120;
  const ctx = sized(canvas, width, height);
  const p = currentPalette();
  const finite = values.map((v) => (v != null && Number.isFinite(v) ? v : 0));
  const top = Math.max(1, ...finite) * 1.1;
  const left = 30;
  const bottom = height - 16;
  const slot = (width - left) / Math.max(1, finite.length);
  ctx.font = p.font;
  ctx.fillStyle = css(p.series.blue);
  finite.forEach((v, i) => {
    const h = (v / top) * (bottom - 4);
    ctx.fillRect(left + i * slot + slot * 0.15, bottom - h, slot * 0.7, h);
  });
  ctx.strokeStyle = css(p.foreground, 0.7);
  ctx.setLineDash([4, 3]);
  const one = bottom - (1 / top) * (bottom - 4);
  ctx.beginPath();
  ctx.moveTo(left, one);
  ctx.lineTo(width, one);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = css(p.foreground);
  ctx.textBaseline = 'middle';
  ctx.fillText('1', left - 12, one);
  ctx.fillText(formatNumber(top), 0, 8);
  ctx.textBaseline = 'top';
  ctx.fillText('σ₁ … σᵣ', left, bottom + 2);
  canvas.setAttribute('aria-label', `singular values: ${values.map((v) => formatNumber(v)).join(', ')}`);
}
