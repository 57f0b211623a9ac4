// Messages between the language server and a trainer process (fork + IPC). Both ends import this.
import type { BackendPreference } from '../../kernels/backend-names';
import type { ConfigOverrides } from '../engine/session';
import type { TrainEvent, TrainSummary } from '../engine/train';

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

export type ToTrainer = { type: 'start'; request: TrainRequest } | { type: 'cancel' };

export type FromTrainer =
  | { type: 'event'; event: TrainEvent }
  | { type: 'result'; summary: TrainSummary }
  | { type: 'error'; message: string };
