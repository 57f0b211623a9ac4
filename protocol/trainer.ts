// Messages between the language server and a trainer process (fork + IPC), and the events the
// training loop reports: the server's job manager and server/trainer.ts both import this.
import type { BackendPreference } from './backends';
import type { AdapterMethod } from './methods';
import type { MetricRecord, MixerSnapshot, RunOutcome, TrainSummary } from './records';

export interface TrainRequest {
  configPath: string;
  /** Resume this run folder from its newest checkpoint instead of starting a new run. */
  resumeRunDir?: string;
  /** Overrides the config's `backend` (the editor's `moslora.backend` setting). */
  backend?: BackendPreference;
  /** Overrides the config's `output.runs_dir`, absolute (the editor's `moslora.runsDirectory`). */
  runsDir?: string;
  /** Start the run in this folder (absolute) instead of <runs_dir>/<run name> (an A/B's run). */
  runDir?: string;
  /** What the run changes of the config (an A/B's method, seed and threads). */
  overrides?: ConfigOverrides;
  /** Cores the job may use; default: the machine's. */
  cores?: number;
}

/** What a run changes of its config (an A/B's method, seed and threads); the rest stays as written. */
export interface ConfigOverrides {
  method?: AdapterMethod;
  /** training.seed */
  seed?: number;
  /** training.workers */
  workers?: number | 'auto';
}

/** Where a training run stands: loading the model, stepping, writing files, or ended. */
export type TrainPhase = 'loading' | 'training' | 'saving' | RunOutcome;

export type TrainEvent =
  | { type: 'state'; state: TrainPhase; runDir: string; step: number; totalSteps: number; message?: string; backend?: string; device?: string }
  | { type: 'metrics'; record: MetricRecord }
  | { type: 'mixers'; snapshots: MixerSnapshot[] };

export type ToTrainer = { type: 'start'; request: TrainRequest } | { type: 'cancel' };

export type FromTrainer =
  | { type: 'event'; event: TrainEvent }
  | { type: 'result'; summary: TrainSummary }
  | { type: 'error'; message: string };
