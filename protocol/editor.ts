// The custom protocol between the extension and the language server: every method name and
// shape, imported by both ends. Nothing else spells a method name.
import { NotificationType, RequestType, RequestType0 } from 'vscode-languageserver-protocol';
import { BACKEND_PREFERENCES, type BackendPreference } from './backends';
import { AB_METHODS } from './methods';
import { boolean, exactKeys, fail, finite, integer, list, object, oneOf, parsed, quoted, string, type Obj, type Parsed } from './checks';
import type { CombineResult, EnvironmentReport, ExportResult, GenerateResult, MergeResult } from './cli';
import type { MetricRecord, MixerSnapshot, TrainSummary } from './records';
import type { TrainPhase, TrainRequest } from './trainer';

/** A job's state: waiting for the one GPU job slot, or its trainer's phase. */
export type JobState = 'queued' | TrainPhase;

export interface JobInfo {
  id: number;
  request: TrainRequest;
  state: JobState;
  runDir?: string;
  /** The trainer process, while it runs. */
  pid?: number;
  step: number;
  totalSteps: number;
  /** Why the job is queued, failed or was cancelled. */
  message?: string;
  /** The trainer's last lines of output, kept for a failed job's report. */
  lastOutput: string[];
  summary?: TrainSummary;
  /** The backend the trainer started, and its device in words (once it has loaded). */
  backend?: string;
  device?: string;
}

/** What listeners receive: a job's new state, and the records that arrived since the last update. */
export interface JobUpdate {
  job: JobInfo;
  metrics: MetricRecord[];
  mixers: MixerSnapshot[];
}

export const environmentRequest = new RequestType0<EnvironmentReport, void>('moslora/environment');

export interface StartTrainingParams {
  /** The config file's URI (file:). */
  configUri: string;
  /** Continue this run folder from its newest checkpoint instead of starting a new run. */
  resumeRunDir?: string;
  /** The editor's `moslora.backend` when not `auto`: overrides the config's `backend`. */
  backend?: BackendPreference;
  /** The editor's `moslora.runsDirectory`, absolute or relative to the workspace folder that holds the config: overrides the config's `output.runs_dir`. */
  runsDir?: string;
}

/** Queues a training job; it runs in its own process. Answers at once with the job (queued or loading). */
export const startTrainingRequest = new RequestType<StartTrainingParams, JobInfo, void>('moslora/startTraining');

/** Asks a job to stop: it saves a checkpoint first. A queued job is dropped at once. */
export const cancelTrainingRequest = new RequestType<{ jobId: number }, JobInfo, void>('moslora/cancelTraining');

export const listJobsRequest = new RequestType0<JobInfo[], void>('moslora/listJobs');

/** A run folder as listed from what is on disk, so past runs survive restarts. */
export interface RunFolder {
  runDir: string;
  name: string;
  /** summary.json as written (TrainSummary), unchecked: null until the run ended (done, cancelled or failed). */
  summary: Record<string, unknown> | null;
  checkpoints: number[];
  lastStep: number;
  /** The A/B it belongs to, for a run folder inside an A/B's folder (ab-<name>/ with ab.json). */
  ab?: AbMembership;
}

/** A run's place in an A/B: the A/B's name (its folder is ab-<name>), the method and the seed it trains. */
export interface AbMembership {
  name: string;
  method: string;
  seed: number;
}

/** Past and present runs found on disk under the given runs folders, newest first in each. */
export const listRunsRequest = new RequestType<{ runsDirs: string[] }, RunFolder[], void>('moslora/listRuns');

export interface RunData {
  runDir: string;
  metrics: MetricRecord[];
  mixers: MixerSnapshot[];
  /** summary.json as written (TrainSummary), unchecked; null while the run has not ended. */
  summary: Record<string, unknown> | null;
}

/** Everything a panel needs to draw a run from disk (metrics.jsonl is the truth). */
export const runDataRequest = new RequestType<{ runDir: string }, RunData, void>('moslora/runData');

/** A job's new state and the records that arrived since its last update (at most ~5 per second). */
export const jobUpdateNotification = new NotificationType<JobUpdate>('moslora/jobUpdate');

/**
 * The editor's settings the server reads itself: `moslora.runsDirectory`, absolute or relative to
 * the first workspace folder (null: each config's own `output.runs_dir`), where the lenses look for a config's runs. Sent
 * as the initialize request's initializationOptions, and again whenever it changes.
 */
export interface ServerSettings {
  runsDirectory: string | null;
}
export const settingsNotification = new NotificationType<ServerSettings>('moslora/settings');

/** Settings as received: anything that is not a non-empty string counts as unset. */
export function serverSettingsOf(value: unknown): ServerSettings {
  const runsDirectory = (value as { runsDirectory?: unknown } | null | undefined)?.runsDirectory;
  return { runsDirectory: typeof runsDirectory === 'string' && runsDirectory !== '' ? runsDirectory : null };
}

// ---------------------------------------------------------------------------------------------
// Estimate (the "Estimate" code lens): what a config would train, read from headers and line counts

export interface EstimateReport {
  configPath: string;
  /** The model folder, absolute. */
  model: string;
  architecture: string;
  method: string;
  r: number;
  /** Adapted linear modules. */
  modules: number;
  baseParameters: number;
  /** Trainable parameters of the same targets as plain LoRA, as MoSLoRA (+ r² per module), and as this config trains. */
  lora: number;
  moslora: number;
  trainable: number;
  /** DoRA's magnitude vectors (d_out per module), counted in `trainable`; present when the config sets use_dora. */
  magnitudes?: number;
  /** Training examples after any eval_split. */
  trainExamples: number;
  batchSize: number;
  gradientAccumulation: number;
  /** Optimizer steps the run will take. */
  totalSteps: number;
  /** Why `totalSteps` is only approximate (packing), when it is. */
  note?: string;
  /** The frozen base at the config's stored precision (torch_dtype, load_in_8bit / load_in_4bit): in words, and its bytes in memory; absent where the checkpoint's layout is unknown. */
  base?: { precision: string; bytes: number };
  /** The base's bytes at each precision a config can ask for, as `moslora inspect` lists them. */
  baseAtPrecisions?: { setting: string; bytes: number }[];
}

export const estimateRequest = new RequestType<{ configUri: string }, EstimateReport, void>('moslora/estimate');

// ---------------------------------------------------------------------------------------------
// Long operations on adapters and models. Each runs `moslora <command> --json` as a child process
// of the server (never on its event loop); cancelling the request kills the child.

export interface MergeParams {
  adapterDir: string;
  outDir: string;
  /** Replace `outDir` if it exists. */
  force?: boolean;
}
export const mergeAdapterRequest = new RequestType<MergeParams, MergeResult, void>('moslora/mergeAdapter');

export interface ExportParams {
  adapterDir: string;
  outDir: string;
  /** Replace `outDir` if it exists (an earlier export). */
  force?: boolean;
}
/** Writes the adapter as plain LoRA in the PEFT layout (the mixer folded in: A′ = M·A). */
export const exportAdapterRequest = new RequestType<ExportParams, ExportResult, void>('moslora/exportAdapter');

export const COMBINE_METHODS = ['cat', 'linear', 'svd'] as const;

export interface CombineParams {
  adapterDirs: string[];
  method: (typeof COMBINE_METHODS)[number];
  /** One per adapter; 1 each when left out. */
  weights?: number[];
  /** The result's rank (svd). */
  rank?: number;
  outDir: string;
}
/** Combines adapters of one base model (cat exact; linear/svd from the full ΔW). */
export const combineAdaptersRequest = new RequestType<CombineParams, CombineResult, void>('moslora/combineAdapters');

export interface GenerateParams {
  modelDir: string;
  adapterDir?: string;
  prompt: string;
  maxNewTokens: number;
}
export const generateRequest = new RequestType<GenerateParams, GenerateResult, void>('moslora/generate');

// ---------------------------------------------------------------------------------------------
// A/B test: `moslora ab CONFIG --methods … --seeds N --json` as a child process of the server.

export interface AbTestParams {
  /** The config file's URI (file:). */
  configUri: string;
  /** Two or more of AB_METHODS (protocol/methods.ts), the baseline first. */
  methods: string[];
  seeds: number;
  /** The editor's `moslora.runsDirectory` (absolute): the A/B's folder goes there instead of the config's output.runs_dir. */
  runsDir?: string;
  /** Progress notifications for this request carry this id. */
  progressId?: string;
}

/** What `moslora ab --json` prints last, less the report's numbers (report.md has them). */
export interface AbTestResult {
  abDir: string;
  reportFile: string;
  figures: string[];
  /** Runs this call trained to the end. */
  trained: number;
  unfinished: { method: string; seed: number; state: string; message?: string }[];
  cancelled: boolean;
  /** The report's verdict, one sentence per method compared with the baseline. */
  sentences: string[];
}

/**
 * Trains the config once per method and seed, then writes the report. Cancelling stops the
 * runs (each saves a checkpoint first): the same request again continues them.
 */
export const abTestRequest = new RequestType<AbTestParams, AbTestResult, void>('moslora/abTest');

/** Where an A/B stands: runs finished (done, or failed: not trained again) of all, and the run that reported last with its step. */
export interface AbProgress {
  done: number;
  total: number;
  current?: { method: string; seed: number; step: number; totalSteps: number };
}

export const abProgressNotification = new NotificationType<{ progressId: string; progress: AbProgress }>('moslora/abProgress');

// Validation: the server checks every request's params with these before it acts on them (a
// request may come from anything that speaks JSON-RPC on the server's stdio). Exact keys, types
// and limits; paths absolute. Where a path may point is the server's to check.

/** Limits on what a request may carry: paths as Linux takes them, lists and prompts a real use stays below. */
export const PARAM_LIMITS = {
  /** PATH_MAX. */
  pathLength: 4096,
  /** A file: URI of the longest path with every character percent-encoded. */
  uriLength: 3 * 4096 + 16,
  runsDirs: 256,
  /** combine takes two adapters or more. */
  adapters: 64,
  /** combine's weights scale ΔW: 1e6 is past any use. */
  weight: 1e6,
  rank: 4096,
  /** The prompt is one argument of the CLI child: Linux takes 128 KiB per argument, a UTF-16 unit is at most 3 bytes of UTF-8. */
  promptLength: 32_768,
  maxNewTokens: 4096,
  jobId: 2 ** 31 - 1,
  /** An A/B's seeds per method, as the palette command offers them. */
  abSeeds: 20,
  progressIdLength: 64,
} as const;

/** An absolute path (POSIX, or a Windows drive or share), without NUL; it cannot be read as an option. */
export function isAbsolutePath(value: string): boolean {
  return /^(\/|[A-Za-z]:[\\/]|\\\\[^\\])/.test(value) && !value.includes('\0');
}

function path(value: unknown, where: string): string {
  const text = string(value, where, PARAM_LIMITS.pathLength);
  if (!isAbsolutePath(text)) fail(`${where}: expected an absolute path, got ${quoted(text)}`);
  return text;
}

/** A folder path, absolute or relative (the server resolves it against the workspace), without NUL and not read as an option. */
function folder(value: unknown, where: string): string {
  const text = string(value, where, PARAM_LIMITS.pathLength);
  if (text === '' || text.startsWith('-') || text.includes('\0')) fail(`${where}: expected a folder path, got ${quoted(text)}`);
  return text;
}

function uri(value: unknown, where: string): string {
  const text = string(value, where, PARAM_LIMITS.uriLength);
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(text)) fail(`${where}: expected a URI (file:///…), got ${quoted(text)}`);
  return text;
}

function params(value: unknown, method: string, required: readonly string[], optional: readonly string[] = []): Obj {
  const o = object(value, method);
  exactKeys(o, method, required, optional);
  return o;
}

export function parseStartTrainingParams(value: unknown): Parsed<StartTrainingParams> {
  return parsed((v) => {
    const o = params(v, 'startTraining', ['configUri'], ['resumeRunDir', 'backend', 'runsDir']);
    return {
      configUri: uri(o.configUri, 'startTraining.configUri'),
      ...(o.resumeRunDir !== undefined ? { resumeRunDir: path(o.resumeRunDir, 'startTraining.resumeRunDir') } : {}),
      ...(o.backend !== undefined ? { backend: oneOf(o.backend, BACKEND_PREFERENCES, 'startTraining.backend') } : {}),
      ...(o.runsDir !== undefined ? { runsDir: folder(o.runsDir, 'startTraining.runsDir') } : {}),
    };
  }, value);
}

export function parseCancelTrainingParams(value: unknown): Parsed<{ jobId: number }> {
  return parsed((v) => ({ jobId: integer(params(v, 'cancelTraining', ['jobId']).jobId, 'cancelTraining.jobId', 1, PARAM_LIMITS.jobId) }), value);
}

export function parseListRunsParams(value: unknown): Parsed<{ runsDirs: string[] }> {
  return parsed((v) => ({ runsDirs: list(params(v, 'listRuns', ['runsDirs']).runsDirs, 'listRuns.runsDirs', 0, PARAM_LIMITS.runsDirs, path) }), value);
}

export function parseRunDataParams(value: unknown): Parsed<{ runDir: string }> {
  return parsed((v) => ({ runDir: path(params(v, 'runData', ['runDir']).runDir, 'runData.runDir') }), value);
}

export function parseEstimateParams(value: unknown): Parsed<{ configUri: string }> {
  return parsed((v) => ({ configUri: uri(params(v, 'estimate', ['configUri']).configUri, 'estimate.configUri') }), value);
}

/** An adapter folder, an output folder and `force`: what merge and export take, named by `method` in errors. */
function adapterToFolderParams(method: 'mergeAdapter' | 'exportAdapter', value: unknown): Parsed<MergeParams & ExportParams> {
  return parsed((v) => {
    const o = params(v, method, ['adapterDir', 'outDir'], ['force']);
    return {
      adapterDir: path(o.adapterDir, `${method}.adapterDir`),
      outDir: path(o.outDir, `${method}.outDir`),
      ...(o.force !== undefined ? { force: boolean(o.force, `${method}.force`) } : {}),
    };
  }, value);
}

export function parseMergeParams(value: unknown): Parsed<MergeParams> {
  return adapterToFolderParams('mergeAdapter', value);
}

export function parseExportParams(value: unknown): Parsed<ExportParams> {
  return adapterToFolderParams('exportAdapter', value);
}

export function parseCombineParams(value: unknown): Parsed<CombineParams> {
  return parsed((v) => {
    const o = params(v, 'combineAdapters', ['adapterDirs', 'method', 'outDir'], ['weights', 'rank']);
    const adapterDirs = list(o.adapterDirs, 'combineAdapters.adapterDirs', 2, PARAM_LIMITS.adapters, path);
    const weight = (w: unknown, where: string) => {
      const n = finite(w, where);
      if (Math.abs(n) > PARAM_LIMITS.weight) fail(`${where}: expected a weight from -${PARAM_LIMITS.weight} to ${PARAM_LIMITS.weight}, got ${n}`);
      return n;
    };
    const weights = o.weights === undefined ? undefined : list(o.weights, 'combineAdapters.weights', adapterDirs.length, adapterDirs.length, weight);
    return {
      adapterDirs,
      method: oneOf(o.method, COMBINE_METHODS, 'combineAdapters.method'),
      ...(weights ? { weights } : {}),
      ...(o.rank !== undefined ? { rank: integer(o.rank, 'combineAdapters.rank', 1, PARAM_LIMITS.rank) } : {}),
      outDir: path(o.outDir, 'combineAdapters.outDir'),
    };
  }, value);
}

export function parseGenerateParams(value: unknown): Parsed<GenerateParams> {
  return parsed((v) => {
    const o = params(v, 'generate', ['modelDir', 'prompt', 'maxNewTokens'], ['adapterDir']);
    return {
      modelDir: path(o.modelDir, 'generate.modelDir'),
      ...(o.adapterDir !== undefined ? { adapterDir: path(o.adapterDir, 'generate.adapterDir') } : {}),
      prompt: string(o.prompt, 'generate.prompt', PARAM_LIMITS.promptLength),
      maxNewTokens: integer(o.maxNewTokens, 'generate.maxNewTokens', 1, PARAM_LIMITS.maxNewTokens),
    };
  }, value);
}

export function parseAbTestParams(value: unknown): Parsed<AbTestParams> {
  return parsed((v) => {
    const o = params(v, 'abTest', ['configUri', 'methods', 'seeds'], ['runsDir', 'progressId']);
    return {
      configUri: uri(o.configUri, 'abTest.configUri'),
      methods: list(o.methods, 'abTest.methods', 2, AB_METHODS.length, (method, where) => oneOf(method, AB_METHODS, where)),
      seeds: integer(o.seeds, 'abTest.seeds', 2, PARAM_LIMITS.abSeeds),
      ...(o.runsDir !== undefined ? { runsDir: path(o.runsDir, 'abTest.runsDir') } : {}),
      ...(o.progressId !== undefined ? { progressId: string(o.progressId, 'abTest.progressId', PARAM_LIMITS.progressIdLength) } : {}),
    };
  }, value);
}
