// The messages between the extension and its webview panels, both ways, as tagged unions:
// every message name and shape lives here, imported by the extension and by the webview.
// No DOM and no Node types: this file compiles under both.
//
// extension → webview: ExtensionMessage (validated by the webview with parseExtensionMessage)
// webview → extension: WebviewMessage (validated by the extension with parseWebviewMessage
//                      before it acts on anything: a webview is untrusted input)

import { count, exactKeys, fail, finite, object, oneOf, parsed, string, type Obj, type Parsed } from './checks';
import type { MetricRecord, MixerSnapshot } from './records';

export type { Parsed } from './checks';

/** Bumped when a message changes shape; the webview sends it in `ready`. */
export const PROTOCOL_VERSION = 2;

export const RUN_PHASES = ['queued', 'loading', 'training', 'saving', 'done', 'failed', 'stopped'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

/** Where a run stands. `stopped` is a run the user stopped (it still saved what it had). */
export interface RunState {
  runId: string;
  /** What the user calls it (the run folder's name, usually). */
  name: string;
  phase: RunPhase;
  step: number;
  total: number;
  /** The compute backend that runs it: `wasm`, `webgpu`, `tensorflow`, `cpu`. */
  backend: string;
  /** The device in words, e.g. `NVIDIA H100 80GB` or `CPU (2 cores)`. */
  device: string;
  /** Milliseconds since the epoch; null while queued. */
  startedAt: number | null;
  /** Milliseconds since the epoch, once done, failed or stopped. */
  finishedAt?: number;
  /** Why it failed or stopped, in words the user can act on. */
  reason?: string;
}

/** A hyperparameter's value as a run's config.yaml wrote it (lists and objects as their YAML/JSON text). */
export type Hyperparameter = string | number | boolean | null;

/** A run on disk or live, for the run pickers and Compare. `metrics` may be left out: the webview then asks with requestRun. */
export interface RunListing {
  runId: string;
  name: string;
  /** `lora`, `moslora`, … for the legend. */
  method?: string;
  state?: RunState;
  metrics?: MetricRecord[];
  /** The last logged train loss (summary.json's `finalLoss`: raw, as the status bar shows it). */
  finalLoss?: number;
  /** It has a checkpoint to continue from and is not training: Resume applies. */
  resumable?: boolean;
  /**
   * The run's config.yaml (the resolved config that ran) flattened to dotted keys, e.g.
   * `training.learning_rate`: Compare shows the keys whose values differ between runs.
   */
  hyperparameters?: Record<string, Hyperparameter>;
  /** The A/B it belongs to: Compare draws an A/B's runs as one mean line with a band per method. */
  ab?: { name: string; method: string; seed: number };
}

/** A job waiting for the one job slot (it has no run folder yet). */
export interface QueuedJob {
  /** The extension's key for the job (`<server generation>:<job id>`), for cancelQueued. */
  jobKey: string;
  /** The config it trains, e.g. `tiny` for tiny.moslora.yaml. */
  name: string;
  /** Why it waits, in words. */
  reason: string;
}

export const THEME_KINDS = ['light', 'dark', 'highContrast', 'highContrastLight'] as const;
export type ThemeKind = (typeof THEME_KINDS)[number];

export const PANEL_TABS = ['training', 'compare', 'mixers'] as const;
export type PanelTab = (typeof PANEL_TABS)[number];

// ---------------------------------------------------------------------------------------------
// extension → webview

export type ExtensionMessage =
  /** The run's state changed. The latest run to report a state is the one the Training tab shows. */
  | { type: 'runState'; state: RunState }
  /** Metric records of a run, oldest first; `replace` drops what the webview had (a reload, a resume). */
  | { type: 'metrics'; runId: string; records: MetricRecord[]; replace?: boolean }
  /** Mixer snapshots of a run; `replace` as for metrics. */
  | { type: 'mixers'; runId: string; snapshots: MixerSnapshot[]; replace?: boolean }
  /** The runs on disk and live, newest first (replaces the previous list). */
  | { type: 'runs'; runs: RunListing[] }
  /** A run was deleted or renamed: forget it (a renamed run comes back under its new id in `runs`). */
  | { type: 'runRemoved'; runId: string }
  /** The jobs waiting for the running one, oldest first (replaces the previous list; empty when none waits). */
  | { type: 'queue'; jobs: QueuedJob[] }
  /** Show this run and/or this tab, e.g. after "Show Mixer Heatmaps". */
  | { type: 'focus'; runId?: string; tab?: PanelTab }
  /** The user's saved settings, sent once after `ready`. */
  | { type: 'settings'; smoothing: number }
  /** VS Code's theme kind; the colours themselves come from its CSS variables. */
  | { type: 'theme'; kind: ThemeKind };

// ---------------------------------------------------------------------------------------------
// webview → extension

export type WebviewMessage =
  /** The page has loaded and listens: send it everything (state, metrics, mixers, runs). */
  | { type: 'ready'; protocol: number }
  /** The user pressed Stop. */
  | { type: 'stop'; runId: string }
  /** Resume a stopped or failed run from its newest checkpoint. */
  | { type: 'resume'; runId: string }
  /** Rename a run's folder: the extension asks for the new name. */
  | { type: 'renameRun'; runId: string }
  /** Delete a run's folder: the extension asks first, and refuses a run that trains. */
  | { type: 'deleteRun'; runId: string }
  /** Open the report of the A/B this run belongs to. */
  | { type: 'openAbReport'; runId: string }
  /** Drop a queued job before it starts. */
  | { type: 'cancelQueued'; jobKey: string }
  /** Send this run's metrics and mixers (for Compare, or to show a finished run). */
  | { type: 'requestRun'; runId: string }
  /** Save this CSV: the extension asks where (a webview cannot write files). */
  | { type: 'exportCsv'; fileName: string; csv: string }
  /** Save this PNG, given as a `data:image/png;base64,` URL. */
  | { type: 'exportPng'; fileName: string; dataUrl: string }
  /** The smoothing weight changed (0 ≤ w < 1): remember it for the next panel. */
  | { type: 'setSmoothing'; weight: number }
  /** Something went wrong in the page: for the output channel, never shown as-is. */
  | { type: 'error'; message: string };

// ---------------------------------------------------------------------------------------------
// Validation

/** Limits on what a webview may send: an export is a file the user asked for, not a flood. */
export const LIMITS = {
  runIdLength: 200,
  fileNameLength: 200,
  csvBytes: 64 * 1024 * 1024,
  pngBytes: 32 * 1024 * 1024,
  errorLength: 10_000,
  smoothingMax: 0.999,
  jobKeyLength: 40,
  /** Per run: a config has a few dozen keys; this bounds a hostile or broken config.yaml. */
  hyperparameters: 500,
  hyperparameterKeyLength: 200,
  hyperparameterValueLength: 2_000,
  queuedJobs: 100,
} as const;

const PNG_PREFIX = 'data:image/png;base64,';

/**
 * Validates a message from the webview; the extension calls it on EVERY message before acting.
 * Rejects unknown types, missing or extra fields, wrong types, out-of-range numbers, run ids and
 * file names that could name a path, and oversized payloads.
 */
export function parseWebviewMessage(value: unknown): Parsed<WebviewMessage> {
  return parsed(webviewMessage, value);
}

/**
 * Validates a message from the extension (the webview's side). Whole-message: a batch with one
 * bad record is refused, so a bug shows up as an error rather than as a wrong curve.
 */
export function parseExtensionMessage(value: unknown): Parsed<ExtensionMessage> {
  return parsed(extensionMessage, value);
}

/** A run id as the extension hands them out: a folder name, never a path. */
export function isRunId(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length > 0 &&
    value.length <= LIMITS.runIdLength &&
    value !== '.' &&
    value !== '..' &&
    // no separators, no control characters, nothing a shell or a path would read specially
    /^[^/\\\x00-\x1f\x7f:*?"<>|]+$/.test(value)
  );
}

function runId(value: unknown, where: string): string {
  if (!isRunId(value)) fail(`${where}: not a run id: ${JSON.stringify(value)?.slice(0, 80)}`);
  return value;
}

function fileName(value: unknown, where: string, extension: string): string {
  const name = string(value, where, LIMITS.fileNameLength);
  if (!isRunId(name) || !name.toLowerCase().endsWith(extension)) {
    fail(`${where}: expected a plain file name ending in ${extension}, got ${JSON.stringify(name).slice(0, 80)}`);
  }
  return name;
}

/** `<server generation>:<job id>`, as the extension keys its jobs. */
function jobKey(value: unknown, where: string): string {
  const key = string(value, where, LIMITS.jobKeyLength);
  if (!/^\d+:\d+$/.test(key)) fail(`${where}: expected a job key like "1:2", got ${JSON.stringify(key)}`);
  return key;
}

function webviewMessage(value: unknown): WebviewMessage {
  const o = object(value, 'message');
  const type = o.type;
  switch (type) {
    case 'ready':
      exactKeys(o, 'ready', ['type', 'protocol']);
      return { type, protocol: count(o.protocol, 'ready.protocol') };
    case 'stop':
    case 'requestRun':
    case 'resume':
    case 'renameRun':
    case 'deleteRun':
    case 'openAbReport':
      exactKeys(o, type, ['type', 'runId']);
      return { type, runId: runId(o.runId, `${type}.runId`) };
    case 'cancelQueued':
      exactKeys(o, type, ['type', 'jobKey']);
      return { type, jobKey: jobKey(o.jobKey, 'cancelQueued.jobKey') };
    case 'exportCsv': {
      exactKeys(o, type, ['type', 'fileName', 'csv']);
      // a UTF-16 length bounds the UTF-8 size within 3×; the cap is a sanity limit, not exact
      const csv = string(o.csv, 'exportCsv.csv', LIMITS.csvBytes);
      return { type, fileName: fileName(o.fileName, 'exportCsv.fileName', '.csv'), csv };
    }
    case 'exportPng': {
      exactKeys(o, type, ['type', 'fileName', 'dataUrl']);
      const dataUrl = string(o.dataUrl, 'exportPng.dataUrl', LIMITS.pngBytes);
      if (!dataUrl.startsWith(PNG_PREFIX) || !/^[A-Za-z0-9+/]*={0,2}$/.test(dataUrl.slice(PNG_PREFIX.length))) {
        fail(`exportPng.dataUrl: expected ${PNG_PREFIX}<base64>`);
      }
      return { type, fileName: fileName(o.fileName, 'exportPng.fileName', '.png'), dataUrl };
    }
    case 'setSmoothing': {
      exactKeys(o, type, ['type', 'weight']);
      const weight = finite(o.weight, 'setSmoothing.weight');
      if (weight < 0 || weight > LIMITS.smoothingMax) fail(`setSmoothing.weight: expected 0 to ${LIMITS.smoothingMax}, got ${weight}`);
      return { type, weight };
    }
    case 'error':
      exactKeys(o, type, ['type', 'message']);
      return { type, message: string(o.message, 'error.message', LIMITS.errorLength) };
    default:
      return fail(`message: unknown type ${JSON.stringify(type)?.slice(0, 40)}`);
  }
}

function extensionMessage(value: unknown): ExtensionMessage {
  const o = object(value, 'message');
  const type = o.type;
  switch (type) {
    case 'runState':
      exactKeys(o, type, ['type', 'state']);
      return { type, state: runState(o.state, 'runState.state') };
    case 'metrics': {
      exactKeys(o, type, ['type', 'runId', 'records'], ['replace']);
      const records = metricRecords(o.records, 'metrics.records');
      return { type, runId: runId(o.runId, 'metrics.runId'), records, ...optionalFlag(o, 'replace', 'metrics') };
    }
    case 'mixers': {
      exactKeys(o, type, ['type', 'runId', 'snapshots'], ['replace']);
      if (!Array.isArray(o.snapshots)) fail('mixers.snapshots: expected an array');
      const snapshots = o.snapshots.map((s, i) => mixerSnapshot(s, `mixers.snapshots[${i}]`));
      return { type, runId: runId(o.runId, 'mixers.runId'), snapshots, ...optionalFlag(o, 'replace', 'mixers') };
    }
    case 'runs': {
      exactKeys(o, type, ['type', 'runs']);
      if (!Array.isArray(o.runs)) fail('runs.runs: expected an array');
      return { type, runs: o.runs.map((r, i) => runListing(r, `runs.runs[${i}]`)) };
    }
    case 'runRemoved':
      exactKeys(o, type, ['type', 'runId']);
      return { type, runId: runId(o.runId, 'runRemoved.runId') };
    case 'queue': {
      exactKeys(o, type, ['type', 'jobs']);
      if (!Array.isArray(o.jobs)) fail('queue.jobs: expected an array');
      if (o.jobs.length > LIMITS.queuedJobs) fail(`queue.jobs: more than ${LIMITS.queuedJobs} jobs (${o.jobs.length})`);
      return { type, jobs: o.jobs.map((j, i) => queuedJob(j, `queue.jobs[${i}]`)) };
    }
    case 'focus': {
      exactKeys(o, type, ['type'], ['runId', 'tab']);
      const message: ExtensionMessage = { type };
      if (o.runId !== undefined) message.runId = runId(o.runId, 'focus.runId');
      if (o.tab !== undefined) message.tab = oneOf(o.tab, PANEL_TABS, 'focus.tab');
      return message;
    }
    case 'settings': {
      exactKeys(o, type, ['type', 'smoothing']);
      const smoothing = finite(o.smoothing, 'settings.smoothing');
      if (smoothing < 0 || smoothing > LIMITS.smoothingMax) fail(`settings.smoothing: expected 0 to ${LIMITS.smoothingMax}`);
      return { type, smoothing };
    }
    case 'theme':
      exactKeys(o, type, ['type', 'kind']);
      return { type, kind: oneOf(o.kind, THEME_KINDS, 'theme.kind') };
    default:
      return fail(`message: unknown type ${JSON.stringify(type)?.slice(0, 40)}`);
  }
}

function optionalFlag(o: Obj, key: string, where: string): { replace?: boolean } {
  if (o[key] === undefined) return {};
  if (typeof o[key] !== 'boolean') fail(`${where}.${key}: expected true or false`);
  return { replace: o[key] };
}

function runState(value: unknown, where: string): RunState {
  const o = object(value, where);
  exactKeys(o, where, ['runId', 'name', 'phase', 'step', 'total', 'backend', 'device', 'startedAt'], ['finishedAt', 'reason']);
  const state: RunState = {
    runId: runId(o.runId, `${where}.runId`),
    name: string(o.name, `${where}.name`, 500),
    phase: oneOf(o.phase, RUN_PHASES, `${where}.phase`),
    step: count(o.step, `${where}.step`),
    total: count(o.total, `${where}.total`),
    backend: string(o.backend, `${where}.backend`, 100),
    device: string(o.device, `${where}.device`, 500),
    startedAt: o.startedAt === null ? null : finite(o.startedAt, `${where}.startedAt`),
  };
  if (o.finishedAt !== undefined) state.finishedAt = finite(o.finishedAt, `${where}.finishedAt`);
  if (o.reason !== undefined) state.reason = string(o.reason, `${where}.reason`, LIMITS.errorLength);
  return state;
}

function metricRecords(value: unknown, where: string): MetricRecord[] {
  if (!Array.isArray(value)) fail(`${where}: expected an array`);
  for (let i = 0; i < value.length; i++) {
    const record = object(value[i], `${where}[${i}]`);
    count(record.step, `${where}[${i}].step`);
    oneOf(record.kind, ['train', 'eval'], `${where}[${i}].kind`);
    for (const key in record) {
      const v = record[key];
      if (v !== null && typeof v !== 'string' && (typeof v !== 'number' || !Number.isFinite(v))) {
        fail(`${where}[${i}].${key}: expected a number, a string or null`);
      }
    }
  }
  return value as MetricRecord[];
}

function mixerSnapshot(value: unknown, where: string): MixerSnapshot {
  const o = object(value, where);
  exactKeys(o, where, ['step', 'module', 'r', 'values', 'distanceFromIdentity', 'singularValues']);
  const r = count(o.r, `${where}.r`);
  if (r < 1 || r > 1024) fail(`${where}.r: expected 1 to 1024, got ${r}`);
  const values = numbers(o.values, `${where}.values`);
  if (values.length !== r * r) fail(`${where}.values: expected ${r}×${r} = ${r * r} values, got ${values.length}`);
  return {
    step: count(o.step, `${where}.step`),
    module: string(o.module, `${where}.module`, 500),
    r,
    values,
    distanceFromIdentity: o.distanceFromIdentity === null ? null : finite(o.distanceFromIdentity, `${where}.distanceFromIdentity`),
    singularValues: numbers(o.singularValues, `${where}.singularValues`),
  };
}

/** Finite numbers, or null where the value was not finite. */
function numbers(value: unknown, where: string): (number | null)[] {
  if (!Array.isArray(value)) fail(`${where}: expected an array of numbers`);
  for (let i = 0; i < value.length; i++) if (value[i] !== null) finite(value[i], `${where}[${i}]`);
  return value as (number | null)[];
}

function runListing(value: unknown, where: string): RunListing {
  const o = object(value, where);
  exactKeys(o, where, ['runId', 'name'], ['method', 'state', 'metrics', 'finalLoss', 'resumable', 'hyperparameters', 'ab']);
  const listing: RunListing = { runId: runId(o.runId, `${where}.runId`), name: string(o.name, `${where}.name`, 500) };
  if (o.method !== undefined) listing.method = string(o.method, `${where}.method`, 100);
  if (o.state !== undefined) listing.state = runState(o.state, `${where}.state`);
  if (o.metrics !== undefined) listing.metrics = metricRecords(o.metrics, `${where}.metrics`);
  if (o.finalLoss !== undefined) listing.finalLoss = finite(o.finalLoss, `${where}.finalLoss`);
  if (o.resumable !== undefined) {
    if (typeof o.resumable !== 'boolean') fail(`${where}.resumable: expected true or false`);
    listing.resumable = o.resumable;
  }
  if (o.hyperparameters !== undefined) listing.hyperparameters = hyperparameters(o.hyperparameters, `${where}.hyperparameters`);
  if (o.ab !== undefined) {
    const ab = object(o.ab, `${where}.ab`);
    exactKeys(ab, `${where}.ab`, ['name', 'method', 'seed']);
    listing.ab = { name: string(ab.name, `${where}.ab.name`, 200), method: string(ab.method, `${where}.ab.method`, 100), seed: count(ab.seed, `${where}.ab.seed`) };
  }
  return listing;
}

function hyperparameters(value: unknown, where: string): Record<string, Hyperparameter> {
  const o = object(value, where);
  const keys = Object.keys(o);
  if (keys.length > LIMITS.hyperparameters) fail(`${where}: more than ${LIMITS.hyperparameters} keys (${keys.length})`);
  // a fresh object without a prototype: a key named __proto__ stays a key
  const out: Record<string, Hyperparameter> = Object.create(null) as Record<string, Hyperparameter>;
  for (const key of keys) {
    string(key, `${where} key`, LIMITS.hyperparameterKeyLength);
    const v = o[key];
    if (v === null || typeof v === 'boolean') out[key] = v;
    else if (typeof v === 'number') out[key] = finite(v, `${where}.${key}`);
    else out[key] = string(v, `${where}.${key}`, LIMITS.hyperparameterValueLength);
  }
  return out;
}

function queuedJob(value: unknown, where: string): QueuedJob {
  const o = object(value, where);
  exactKeys(o, where, ['jobKey', 'name', 'reason']);
  return { jobKey: jobKey(o.jobKey, `${where}.jobKey`), name: string(o.name, `${where}.name`, 500), reason: string(o.reason, `${where}.reason`, LIMITS.errorLength) };
}
