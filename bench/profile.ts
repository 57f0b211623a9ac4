// Where a training step's time goes: one MoSLoRA step of a model (forward, backward, AdamW)
// under tf.profile, by kernel, with the arithmetic rate of the step and of its matrix products,
// next to the rate a large plain product reaches on the same backend in the same run.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendChoice } from '../protocol/backends';
import { median } from '../server/engine/median';
import { takeValues } from '../kernels/backends/read';
import { computingKernels } from './measure';
import { loadBenchModel, TrainingWorkload, type WorkloadOptions, type WorkloadRecord } from './workload';

export interface KernelShare {
  kernel: string;
  ms: number;
  calls: number;
  share: number;
}

export interface ProfileBenchResult extends WorkloadRecord {
  bench: 'profile';
  step_ms: number;
  kernels_per_step: number;
  /** Kernels that compute (computingKernels): each a dispatch on a GPU. */
  computing_kernels_per_step: number;
  product_gflop: number;
  step_gflops: number;
  product_ms: number;
  product_gflops: number;
  reference_product_gflops: number;
  top: KernelShare[];
}

/**
 * 2·m·k·n of a BatchMatMul from its recorded shapes: out [..., m, n] and a [..., m, k], or
 * [..., k, m] when transposed (the profile does not record the flags; if a[-2] = m, then k is
 * a[-1] either way).
 */
function productFlops(inputShapes: number[][], outputShape: number[]): number {
  const a = inputShapes[0]!;
  const m = outputShape[outputShape.length - 2]!;
  const k = a[a.length - 2] === m ? a[a.length - 1]! : a[a.length - 2]!;
  return 2 * outputShape.reduce((n, d) => n * d, 1) * k;
}

/** The rate of a [1024 × 1024]·[1024 × 1024] product on the current backend (median of 10). */
async function referenceRate(): Promise<number> {
  const [a, b] = [tf.randomNormal([1024, 1024]), tf.randomNormal([1024, 1024])];
  const times: number[] = [];
  for (let i = 0; i < 12; i++) {
    const started = performance.now();
    await takeValues(tf.matMul(a, b));
    if (i >= 2) times.push(performance.now() - started);
  }
  tf.dispose([a, b]);
  return (2 * 1024 ** 3) / median(times) / 1e6;
}

export async function benchProfile(choice: BackendChoice, options: WorkloadOptions & { model: string; steps: number }): Promise<ProfileBenchResult> {
  const model = await loadBenchModel(options.model);
  const workload = new TrainingWorkload(model, options);
  const { tokens } = workload;
  await workload.step(0);
  const stepMs = median((await workload.timedSteps(1, options.steps)).ms);
  const profile = await tf.profile(() => workload.step(options.steps + 1).then(() => []));
  // tf.profile also lists customGrad scopes, which contain kernels listed on their own: count kernels only.
  const kernels = profile.kernels.filter((k) => tf.getKernel(k.name, choice.backend) !== undefined);
  const byKernel = new Map<string, { ms: number; calls: number }>();
  let productFlopsTotal = 0;
  let productMs = 0;
  let kernelMs = 0;
  for (const k of kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    kernelMs += ms;
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    entry.ms += ms;
    entry.calls++;
    byKernel.set(k.name, entry);
    if (k.name === 'BatchMatMul') {
      productFlopsTotal += productFlops(k.inputShapes as number[][], k.outputShapes[0] as number[]);
      productMs += ms;
    }
  }
  const reference = await referenceRate();
  await workload.dispose();
  model.dispose();
  const top = [...byKernel]
    .sort((x, y) => y[1].ms - x[1].ms)
    .slice(0, 12)
    .map(([kernel, e]) => ({ kernel, ms: Number(e.ms.toFixed(1)), calls: e.calls, share: Number((e.ms / kernelMs).toFixed(3)) }));
  return {
    bench: 'profile', backend: choice.backend, model: options.model, batch: options.batch, tokens, rank: options.rank, checkpointing: options.checkpointing,
    step_ms: Number(stepMs.toFixed(1)), kernels_per_step: kernels.length, computing_kernels_per_step: computingKernels(kernels.map((k) => k.name)).length,
    product_gflop: Number((productFlopsTotal / 1e9).toFixed(2)), step_gflops: Number((productFlopsTotal / stepMs / 1e6).toFixed(1)),
    product_ms: Number(productMs.toFixed(1)), product_gflops: Number((productFlopsTotal / productMs / 1e6).toFixed(1)),
    reference_product_gflops: Number(reference.toFixed(1)), top,
  };
}
