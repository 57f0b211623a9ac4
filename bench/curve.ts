// The loss curve of the training workload (bench/workload.ts) on one backend, for many steps, and
// on a second backend for the first steps, same seed, weights, batch and dropout masks: the
// backends must agree step by step (float32 rounding apart) before a speed on either means
// anything. The GPU check of issue 7: webgpu for a few hundred steps against wasm.
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../kernels/backends/backend';
import { type BackendChoice, type BackendName } from '../protocol/backends';
import { median } from '../server/engine/median';
import { loadBenchModel, TrainingWorkload, type WorkloadOptions, type WorkloadRecord } from './workload';

export interface CurveBenchResult extends WorkloadRecord {
  bench: 'curve';
  device: string;
  compare_backend: string;
  parameters: number;
  steps: number;
  losses: number[];
  compare_losses: number[];
  /** Over the steps both ran: the largest |loss difference| / loss. */
  max_relative_difference: number;
  median_step_ms: number;
  compare_median_step_ms: number;
}

async function curve(model: string, options: WorkloadOptions, steps: number) {
  const loaded = await loadBenchModel(model);
  const workload = new TrainingWorkload(loaded, options);
  try {
    const { ms, losses } = await workload.timedSteps(0, steps);
    return { losses, ms, parameters: loaded.parameterCount, tokens: workload.tokens };
  } finally {
    await workload.dispose();
    loaded.dispose();
  }
}

export async function benchCurve(
  choice: BackendChoice,
  options: WorkloadOptions & { model: string; steps: number; compare: BackendName; compareSteps: number },
): Promise<CurveBenchResult> {
  await selectBackend(options.compare);
  const reference = await curve(options.model, options, options.compareSteps);
  await tf.setBackend(choice.backend);
  const run = await curve(options.model, options, options.steps);
  const both = Math.min(reference.losses.length, run.losses.length);
  const relative = Array.from({ length: both }, (_, i) => Math.abs(run.losses[i]! - reference.losses[i]!) / Math.abs(reference.losses[i]!));
  return {
    bench: 'curve', backend: choice.backend, device: choice.device, compare_backend: options.compare, model: options.model, parameters: run.parameters,
    batch: options.batch, tokens: run.tokens, rank: options.rank, checkpointing: options.checkpointing, steps: options.steps,
    losses: run.losses, compare_losses: reference.losses, max_relative_difference: Math.max(...relative),
    // the first step compiles (shaders, XNNPACK packing): left out of the medians
    median_step_ms: Number(median(run.ms.slice(1)).toFixed(1)), compare_median_step_ms: Number(median(reference.ms.slice(1)).toFixed(1)),
  };
}
