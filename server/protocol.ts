// The custom protocol between the extension and the server: every method name and shape,
// imported by both ends. Nothing else spells a method name.
import { NotificationType, RequestType, RequestType0 } from 'vscode-languageserver-protocol';
import type { BackendChoice } from '../kernels/backend';
import type { BackendName } from '../kernels/backend-names';
import type { MetricRecord, MixerSnapshot, RunListing } from './engine/runs';
import type { JobInfo, JobUpdate } from './jobs/manager';

export type { JobInfo, JobUpdate, MetricRecord, MixerSnapshot, RunListing };

export interface EnvironmentReport {
  /** What `--backend auto` picks on this machine, and why it skipped the others. */
  auto: BackendChoice;
  backends: readonly BackendName[];
  node: string;
  platform: string;
}

export const environmentRequest = new RequestType0<EnvironmentReport, void>('moslora/environment');

/**
 * Commands the server's code lenses name and the extension registers. Each takes one argument:
 * the URI of the config (`ConfigCommandArgs`).
 */
export const configCommands = {
  /** Start a training job from the config. */
  startTraining: 'moslora.startTraining',
  /** Estimate the job: trainable parameters, memory and time per step. */
  estimate: 'moslora.estimate',
} as const;

export type ConfigCommandArgs = [configUri: string];

export interface StartTrainingParams {
  /** The config file's URI (file:). */
  configUri: string;
  /** Continue this run folder from its newest checkpoint instead of starting a new run. */
  resumeRunDir?: string;
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
