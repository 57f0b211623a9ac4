// The custom protocol between the extension and the server: every method name and shape,
// imported by both ends. Nothing else spells a method name.
import { RequestType0 } from 'vscode-languageserver-protocol';
import type { BackendChoice } from '../kernels/backend';
import type { BackendName } from '../kernels/backend-names';

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
