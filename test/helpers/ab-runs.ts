// Planted A/B runs: run folders with the metrics.jsonl and summary.json a trainer writes, and the
// A/B's manifest, for tests of the report and of resuming without training anything.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_FILE, runFolderName } from '../../server/ab/layout';
import type { AdapterMethod } from '../../protocol/methods';
import type { AbManifest } from '../../protocol/records';

export interface PlantedRun {
  method: AdapterMethod;
  seed: number;
  /** Final values: the last train and eval records carry them. */
  trainLoss: number;
  evalLoss: number;
  accuracy: number;
  trainable: number;
  stepSeconds: number;
  /** done (default), or a run that was stopped at its checkpoint. */
  state?: 'done' | 'cancelled' | 'failed';
}

export const STEPS = 6;

/** Records at steps 2, 4, 6 (train) and 3, 6 (eval); the earlier ones differ from the final values, so a report that took them would be wrong. */
export function plantedRecords(run: PlantedRun): object[] {
  return [
    { step: 2, kind: 'train', loss: run.trainLoss + 2, lr: 1e-3, grad_norm: 1, tokens_per_s: 100, epoch: 0, wall_s: 1 },
    { step: 3, kind: 'eval', eval_loss: run.evalLoss + 1, accuracy: 0.25, wall_s: 1.5 },
    { step: 4, kind: 'train', loss: run.trainLoss + 1, lr: 1e-3, grad_norm: 1, tokens_per_s: 100, epoch: 0, wall_s: 2 },
    { step: 6, kind: 'train', loss: run.trainLoss, lr: 0, grad_norm: 1, tokens_per_s: 100, epoch: 0, wall_s: 3 },
    { step: 6, kind: 'eval', eval_loss: run.evalLoss, accuracy: run.accuracy, wall_s: 3.5 },
  ];
}

export async function plantRun(abDir: string, run: PlantedRun): Promise<string> {
  const dir = join(abDir, runFolderName(run.method, run.seed));
  await mkdir(join(dir, 'checkpoints', `step-${STEPS}`), { recursive: true });
  await writeFile(join(dir, 'config.yaml'), `method: ${run.method}\n`);
  await writeFile(join(dir, 'metrics.jsonl'), plantedRecords(run).map((r) => `${JSON.stringify(r)}\n`).join(''));
  const state = run.state ?? 'done';
  await writeFile(join(dir, 'summary.json'), JSON.stringify({
    runDir: dir, state, ...(state === 'failed' ? { reason: 'the loss became NaN at step 7' } : {}), backend: 'wasm', device: 'CPU', threads: 1, method: run.method,
    steps: STEPS, totalSteps: STEPS, trainableParameters: run.trainable, baseParameters: 722048,
    finalLoss: run.trainLoss, evalLoss: run.evalLoss, accuracy: run.accuracy, medianStepSeconds: run.stepSeconds, wallSeconds: 4,
  }));
  return dir;
}

export async function plantManifest(abDir: string, config: string, configSha256: string, methods: AdapterMethod[], seeds: number[]): Promise<AbManifest> {
  const manifest: AbManifest = {
    version: 1, name: 'planted', config, configSha256, methods, seeds, backend: 'wasm', schedule: { atOnce: 1, coresPerRun: 2 },
    runs: methods.flatMap((method) => seeds.map((seed) => ({ method, seed, dir: runFolderName(method, seed) }))),
    report: 'report.md', figures: [],
  };
  await mkdir(abDir, { recursive: true });
  await writeFile(join(abDir, MANIFEST_FILE), JSON.stringify(manifest));
  return manifest;
}
