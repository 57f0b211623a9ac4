// The custom protocol between the extension and the server: every method name and shape,
// imported by both ends. Nothing else spells a method name.
import { NotificationType, RequestType, RequestType0 } from 'vscode-languageserver-protocol';
import type { BackendChoice } from '../kernels/backend';
import type { BackendName, BackendPreference } from '../kernels/backend-names';
import type { MetricRecord, MixerSnapshot, RunListing } from './engine/runs';
import type { JobInfo, JobUpdate } from './jobs/manager';

export type { BackendPreference, JobInfo, JobUpdate, MetricRecord, MixerSnapshot, RunListing };
export { BACKEND_PREFERENCES } from '../kernels/backend-names';

export interface EnvironmentReport {
  /** What `--backend auto` picks on this machine, and why it skipped the others. */
  auto: BackendChoice;
  backends: readonly BackendName[];
  node: string;
  platform: string;
}

export const environmentRequest = new RequestType0<EnvironmentReport, void>('moslora/environment');

/**
 * Commands the server's code lenses name and the extension registers. startTraining and estimate
 * take the URI of the config (`ConfigCommandArgs`); openPanel a run folder (`RunCommandArgs`);
 * mergeAdapter an adapter folder (`AdapterCommandArgs`). From the palette, none has an argument.
 */
export const configCommands = {
  /** Start a training job from the config. */
  startTraining: 'moslora.startTraining',
  /** Estimate the job: trainable parameters, memory and time per step. */
  estimate: 'moslora.estimate',
  /** The training panel, focused on a run. */
  openPanel: 'moslora.openPanel',
  /** Merge an adapter into its base model. */
  mergeAdapter: 'moslora.mergeAdapter',
} as const;

export type ConfigCommandArgs = [configUri: string];
export type RunCommandArgs = [runDir?: string];
export type AdapterCommandArgs = [adapterDir?: string];

export interface StartTrainingParams {
  /** The config file's URI (file:). */
  configUri: string;
  /** Continue this run folder from its newest checkpoint instead of starting a new run. */
  resumeRunDir?: string;
  /** The editor's `moslora.backend` when not `auto`: overrides the config's `backend`. */
  backend?: BackendPreference;
  /** The editor's `moslora.runsDirectory` (absolute): overrides the config's `output.runs_dir`. */
  runsDir?: string;
}

/** Queues a training job; it runs in its own process. Answers at once with the job (queued or loading). */
export const startTrainingRequest = new RequestType<StartTrainingParams, JobInfo, void>('moslora/startTraining');

/** Asks a job to stop: it saves a checkpoint first. A queued job is dropped at once. */
export const cancelTrainingRequest = new RequestType<{ jobId: number }, JobInfo, void>('moslora/cancelTraining');

export const listJobsRequest = new RequestType0<JobInfo[], void>('moslora/listJobs');

/** Past and present runs found on disk under the given runs folders. */
export const listRunsRequest = new RequestType<{ runsDirs: string[] }, RunListing[], void>('moslora/listRuns');

export interface RunData {
  runDir: string;
  metrics: MetricRecord[];
  mixers: MixerSnapshot[];
  summary: Record<string, unknown> | null;
}

/** Everything a panel needs to draw a run from disk (metrics.jsonl is the truth). */
export const runDataRequest = new RequestType<{ runDir: string }, RunData, void>('moslora/runData');

/** A job's new state and the records that arrived since its last update (at most ~5 per second). */
export const jobUpdateNotification = new NotificationType<JobUpdate>('moslora/jobUpdate');

/**
 * The editor's settings the server reads itself: `moslora.runsDirectory` as an absolute path
 * (null: each config's own `output.runs_dir`), where the lenses look for a config's runs. Sent
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
  /** Training examples after any eval_split. */
  trainExamples: number;
  batchSize: number;
  gradientAccumulation: number;
  /** Optimizer steps the run will take. */
  totalSteps: number;
  /** Why `totalSteps` is only approximate (packing), when it is. */
  note?: string;
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
export interface MergeResult {
  outDir: string;
  mergedModules: number;
  /** Largest |logit difference| between base+adapter and the merged model on a probe input. */
  maxAbsLogitDiff: number;
}
export const mergeAdapterRequest = new RequestType<MergeParams, MergeResult, void>('moslora/mergeAdapter');

export interface ExportParams {
  adapterDir: string;
  outDir: string;
}
export interface ExportResult {
  outDir: string;
  modules: number;
}
/** Writes the adapter as plain LoRA in the PEFT layout (the mixer folded in: A′ = M·A). */
export const exportAdapterRequest = new RequestType<ExportParams, ExportResult, void>('moslora/exportAdapter');

export interface CombineParams {
  adapterDirs: string[];
  method: 'cat' | 'linear' | 'svd';
  /** One per adapter; 1 each when left out. */
  weights?: number[];
  /** The result's rank (svd). */
  rank?: number;
  outDir: string;
}
export interface CombineResult {
  outDir: string;
  modules: number;
  rank: number;
  /** The largest ‖ΔW − ΔW_r‖_F / ‖ΔW‖_F over the modules: 0 for cat. */
  relativeError: number;
}
/** Combines adapters of one base model (cat exact; linear/svd from the full ΔW). */
export const combineAdaptersRequest = new RequestType<CombineParams, CombineResult, void>('moslora/combineAdapters');

export interface GenerateParams {
  modelDir: string;
  adapterDir?: string;
  prompt: string;
  maxNewTokens: number;
}
export interface GenerateResult {
  text: string;
  /** How many tokens were generated (the prompt not counted). */
  tokens: number;
  /** The generated token ids, in order. */
  tokenIds: number[];
  stoppedBy: 'eos' | 'max_new_tokens';
}
export const generateRequest = new RequestType<GenerateParams, GenerateResult, void>('moslora/generate');
