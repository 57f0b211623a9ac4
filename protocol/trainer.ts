// Messages between the language server and a trainer process (fork + IPC), and the events the
// training loop reports: the server's job manager and server/trainer.ts both import this.
import type { BackendPreference } from './backends';
import type { MetricRecord, MixerSnapshot, RunOutcome, TrainSummary } from './records';

export interface TrainRequest {
  configPath: string;
  /** Resume this run folder from its newest checkpoint instead of starting a new run. */
  resumeRunDir?: string;
  /** Overrides the config's `backend` (the editor's `moslora.backend` setting). */
  backend?: BackendPreference;
  /** Overrides the config's `output.runs_dir`, absolute (the editor's `moslora.runsDirectory`). */
  runsDir?: string;
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
  | { type: 'error'; message: string; /** Where it was thrown: for the server log, never shown as the job's output. */ stack?: string };
