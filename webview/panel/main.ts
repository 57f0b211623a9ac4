// The training panel's entry point: builds the page, listens to the extension, persists the
// user's choices (and, while small, the data) with vscode.setState so a reopened panel looks
// the same at once; then says `ready`, and the extension sends the truth from metrics.jsonl.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-tab-header/index.js';
import '@vscode-elements/elements/dist/vscode-tab-panel/index.js';
import '@vscode-elements/elements/dist/vscode-tabs/index.js';
import { MixersView } from '../heatmap/mixers';
import { Store } from '../lib/store';
import { watchTheme } from '../lib/theme';
import { vscodeApi } from '../lib/vscode-api';
import { LIMITS, PANEL_TABS, PROTOCOL_VERSION, parseExtensionMessage, type ExtensionMessage, type RunListing, type RunState } from '../../protocol/webview';
import { CompareView } from './compare';
import { $, DEFAULT_UI, html, type Context, type UiState } from './context';
import { TrainingView } from './training';
import type { MetricRecord, MixerSnapshot } from '../../protocol/records';

/** What vscode.setState keeps. Data only while small: VS Code serialises it on every save. */
interface Persisted {
  version: 1;
  ui: UiState;
  currentRunId: string | undefined;
  listed: string[];
  runs: { runId: string; name: string; method?: string; state?: RunState; records?: MetricRecord[]; mixers?: MixerSnapshot[] }[];
}

const PERSIST_MAX_RECORDS = 20_000;
const PERSIST_MAX_SNAPSHOTS = 2_000;
const SAVE_DELAY_MS = 1_000;

const vscode = vscodeApi<Persisted>();
const store = new Store();
const persisted = vscode.getState();
const ui: UiState = persisted?.version === 1 ? { ...DEFAULT_UI, ...persisted.ui, mixer: { ...DEFAULT_UI.mixer, ...persisted.ui.mixer } } : structuredClone(DEFAULT_UI);

let saveTimer: ReturnType<typeof setTimeout> | undefined;
const ctx: Context = {
  store,
  ui,
  post: (message) => vscode.post(message),
  saveSoon: () => {
    if (saveTimer === undefined) saveTimer = setTimeout(save, SAVE_DELAY_MS);
  },
  ensure: (runId) => {
    if (store.needs(runId)) vscode.post({ type: 'requestRun', runId });
  },
  show: (runId) => {
    store.currentRunId = runId;
    ctx.ensure(runId);
    ctx.saveSoon();
    update();
  },
};

function save(): void {
  saveTimer = undefined;
  const runs = [...store.runs.values()];
  const records = runs.reduce((n, r) => n + r.records.length, 0);
  const snapshots = runs.reduce((n, r) => n + [...r.mixers.values()].reduce((m, l) => m + l.length, 0), 0);
  const withData = records <= PERSIST_MAX_RECORDS && snapshots <= PERSIST_MAX_SNAPSHOTS;
  vscode.setState({
    version: 1,
    ui,
    currentRunId: store.currentRunId,
    listed: store.listed,
    runs: runs.map((r) => ({
      runId: r.runId,
      name: r.name,
      ...(r.method ? { method: r.method } : {}),
      ...(r.state ? { state: r.state } : {}),
      ...(withData && r.loaded ? { records: r.records, mixers: [...r.mixers.values()].flat() } : {}),
    })),
  });
}

// ---------------------------------------------------------------------------------------------
// The page

const app = html(`
  <div class="app">
    <div class="toolbar chart-controls">
      <label class="control" title="TensorBoard's smoothing: a debiased exponential moving average of the logged points">
        Smoothing <input class="smoothing" type="range" min="0" max="${LIMITS.smoothingMax}" step="0.001">
        <span class="smoothing-value"></span>
      </label>
      <label class="control">X axis
        <vscode-single-select class="x-mode">
          <vscode-option value="step">Step</vscode-option>
          <vscode-option value="wall">Wall time</vscode-option>
        </vscode-single-select>
      </label>
      <vscode-checkbox class="log-y" label="Log scale (y)"></vscode-checkbox>
      <span class="spacer"></span>
      <vscode-button class="export-csv" secondary>Export CSV</vscode-button>
      <vscode-button class="export-png" secondary>Export PNG</vscode-button>
    </div>
    <vscode-tabs class="tabs">
      <vscode-tab-header slot="header">Training</vscode-tab-header>
      <vscode-tab-panel class="tab-training"></vscode-tab-panel>
      <vscode-tab-header slot="header">Compare</vscode-tab-header>
      <vscode-tab-panel class="tab-compare"></vscode-tab-panel>
      <vscode-tab-header slot="header">Mixers</vscode-tab-header>
      <vscode-tab-panel class="tab-mixers"></vscode-tab-panel>
    </vscode-tabs>
  </div>`);
document.body.append(app);

const training = new TrainingView($(app, '.tab-training'), ctx);
const compare = new CompareView($(app, '.tab-compare'), ctx);
const mixers = new MixersView($(app, '.tab-mixers'), ctx);

const smoothing = $<HTMLInputElement>(app, '.smoothing');
const smoothingValue = $(app, '.smoothing-value');
const xMode = $<HTMLElement & { value: string }>(app, '.x-mode');
const logY = $<HTMLElement & { checked: boolean }>(app, '.log-y');
const tabs = $<HTMLElement & { selectedIndex: number }>(app, '.tabs');

function showControls(): void {
  smoothing.value = String(ui.smoothing);
  smoothingValue.textContent = ui.smoothing.toFixed(3);
  xMode.value = ui.xMode;
  logY.checked = ui.logY;
  $(app, '.chart-controls').hidden = ui.tab === 'mixers';
}

let smoothingTimer: ReturnType<typeof setTimeout> | undefined;
smoothing.addEventListener('input', () => {
  ui.smoothing = Math.min(LIMITS.smoothingMax, Math.max(0, Number(smoothing.value)));
  smoothingValue.textContent = ui.smoothing.toFixed(3);
  ctx.saveSoon();
  update();
  // the extension keeps it as a setting for the next panel; not on every pixel of a drag
  clearTimeout(smoothingTimer);
  smoothingTimer = setTimeout(() => vscode.post({ type: 'setSmoothing', weight: ui.smoothing }), 300);
});
xMode.addEventListener('change', () => {
  ui.xMode = xMode.value === 'wall' ? 'wall' : 'step';
  ctx.saveSoon();
  rebuild();
});
logY.addEventListener('change', () => {
  ui.logY = logY.checked;
  ctx.saveSoon();
  rebuild();
});
tabs.addEventListener('vsc-tabs-select', (event) => {
  ui.tab = PANEL_TABS[event.detail.selectedIndex] ?? 'training';
  ctx.saveSoon();
  showControls();
  update();
});
$(app, '.export-csv').addEventListener('click', () => {
  const out = ui.tab === 'compare' ? compare.exportCsv() : training.exportCsv();
  if (out) vscode.post({ type: 'exportCsv', ...out });
});
$(app, '.export-png').addEventListener('click', () => {
  const out = ui.tab === 'compare' ? compare.exportPng() : training.exportPng();
  if (out) vscode.post({ type: 'exportPng', ...out });
});

let updatePending = false;
/** Data changed: every view redraws what changed, once per frame. */
function update(): void {
  if (updatePending) return;
  updatePending = true;
  requestAnimationFrame(() => {
    updatePending = false;
    // the run the Training and Mixers tabs show: its records from disk, once
    if (store.currentRunId !== undefined) ctx.ensure(store.currentRunId);
    training.update();
    compare.update();
    mixers.update();
  });
}

/** Theme, x mode or log scale changed: charts are rebuilt. */
function rebuild(): void {
  training.rebuild();
  compare.rebuild();
  mixers.rebuild();
  update();
}

// ---------------------------------------------------------------------------------------------
// Messages from the extension

function apply(message: ExtensionMessage): void {
  switch (message.type) {
    case 'runState':
      store.setState(message.state);
      break;
    case 'metrics':
      store.addRecords(message.runId, message.records, message.replace);
      break;
    case 'mixers':
      store.run(message.runId).addMixers(message.snapshots, message.replace);
      break;
    case 'runs':
      store.setListing(message.runs);
      break;
    case 'runRemoved':
      store.remove(message.runId);
      ctx.saveSoon();
      break;
    case 'queue':
      store.queue = message.jobs;
      break;
    case 'focus': {
      if (message.runId !== undefined) {
        store.currentRunId = message.runId;
        ctx.ensure(message.runId);
      }
      if (message.tab) {
        ui.tab = message.tab;
        tabs.selectedIndex = PANEL_TABS.indexOf(message.tab);
        showControls();
      }
      break;
    }
    case 'settings':
      ui.smoothing = message.smoothing;
      showControls();
      break;
    case 'theme':
      // the colours come with VS Code's CSS variables, which the theme watcher also sees
      rebuild();
      break;
  }
  ctx.saveSoon();
  update();
}

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  const parsed = parseExtensionMessage(event.data);
  if (parsed.ok) apply(parsed.message);
  else vscode.post({ type: 'error', message: `panel: refused a message: ${parsed.error}` });
});

function report(error: unknown): void {
  const message = error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error);
  vscode.post({ type: 'error', message: message.slice(0, LIMITS.errorLength) });
}
// "ResizeObserver loop completed with undelivered notifications" is the browser saying that
// layout changed while it reported sizes, and that it reports the rest next frame: a note, not
// an error of ours (no Error object comes with it), so it is not reported as one.
const RESIZE_OBSERVER_NOTE = /^ResizeObserver loop/;
window.addEventListener('error', (event) => {
  if (!event.error && RESIZE_OBSERVER_NOTE.test(event.message)) return;
  report(event.error ?? event.message);
});
window.addEventListener('unhandledrejection', (event) => report(event.reason));

// ---------------------------------------------------------------------------------------------
// Start: restore, then ask for the data

/** The page as it was, drawn at once; each run shown is still asked for again (a run may have gone on since). */
function restore(state: Persisted): void {
  const listings: RunListing[] = [];
  for (const run of state.runs) {
    const listing: RunListing = { runId: run.runId, name: run.name };
    if (run.method) listing.method = run.method;
    if (run.state) listing.state = run.state;
    listings.push(listing);
    if (run.records) store.run(run.runId).addRecords(run.records);
    if (run.mixers) store.run(run.runId).addMixers(run.mixers);
  }
  store.setListing(listings);
  store.listed = state.listed.filter((id) => store.runs.has(id));
  store.currentRunId = state.currentRunId;
  store.markRestored();
}

if (persisted?.version === 1) restore(persisted);
tabs.selectedIndex = PANEL_TABS.indexOf(ui.tab);
showControls();
rebuild();
watchTheme(rebuild);
setInterval(() => training.tick(), 1000);
document.body.dataset.ready = 'true';
vscode.post({ type: 'ready', protocol: PROTOCOL_VERSION });
