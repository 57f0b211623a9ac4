// The host's share of a training step on webgpu. tfjs records every kernel from JavaScript: a
// shader key, a uniform buffer, a bind group and a dispatch, through Dawn's validation. On a GPU
// that runs the arithmetic faster than the host records it, this is the step's time. Dawn's null
// device (`backend=null`) validates and records every command and computes nothing, so a step
// there takes the host's time alone: the floor under a step's time on any GPU, measured without
// one. Counted besides: dispatches (kernels that reach the GPU: tfjs runs some, such as a cast to
// the same type, without one), uploads of values from the host, and readbacks.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendChoice } from '../protocol/backends';
import { median } from '../server/engine/median';
import { loadBenchModel, TrainingWorkload, type WorkloadOptions, type WorkloadRecord } from './workload';

/** Dawn's options for its null device. */
export const DAWN_NULL_DEVICE = ['backend=null'];

export interface WebgpuHostResult extends WorkloadRecord {
  bench: 'webgpu-host';
  device: string;
  steps: number;
  /** Median host time of a step on the null device, in ms. */
  step_ms: number;
  dispatches_per_step: number;
  us_per_dispatch: number;
  uploads_per_step: number;
  upload_mib_per_step: number;
  readbacks_per_step: number;
}

export interface GpuTraffic {
  dispatches: number;
  uploads: number;
  uploadBytes: number;
  readbacks: number;
}

/** The parts of tfjs-backend-webgpu's backend (4.22) the counts wrap. */
interface WebgpuBackendInternals {
  tensorMap: { get(dataId: object): { values: ArrayLike<number> | null; resource: unknown; dtype: string; shape: number[] } };
  recordAndSubmit(...args: unknown[]): void;
  uploadToGPU(dataId: object): void;
  getBufferData(...args: unknown[]): Promise<ArrayBuffer>;
}

/** Counts what the current webgpu backend sends to and reads from the GPU until `stop` is called. */
export function countGpuTraffic(): { traffic: GpuTraffic; stop: () => void } {
  const backend = tf.backend() as unknown as WebgpuBackendInternals;
  const traffic: GpuTraffic = { dispatches: 0, uploads: 0, uploadBytes: 0, readbacks: 0 };
  const original = { recordAndSubmit: backend.recordAndSubmit, uploadToGPU: backend.uploadToGPU, getBufferData: backend.getBufferData };
  for (const name of Object.keys(original)) {
    if (typeof backend[name as keyof typeof original] !== 'function') throw new Error(`the webgpu backend has no ${name} to count (tfjs-backend-webgpu changed)`);
  }
  backend.recordAndSubmit = function (...args) {
    traffic.dispatches++;
    return original.recordAndSubmit.apply(this, args);
  };
  backend.uploadToGPU = function (dataId) {
    const data = this.tensorMap.get(dataId);
    if (data.resource == null && data.values) {
      traffic.uploads++;
      traffic.uploadBytes += 4 * data.shape.reduce((n, d) => n * d, 1);
    }
    return original.uploadToGPU.call(this, dataId);
  };
  backend.getBufferData = function (...args) {
    traffic.readbacks++;
    return original.getBufferData.apply(this, args);
  };
  return { traffic, stop: () => Object.assign(backend, original) };
}

export async function benchWebgpuHost(choice: BackendChoice, options: WorkloadOptions & { model: string; steps: number; onGpu: boolean }): Promise<WebgpuHostResult> {
  if (choice.backend !== 'webgpu') throw new Error(`webgpu-host measures the webgpu backend, got ${choice.backend}`);
  const model = await loadBenchModel(options.model);
  const workload = new TrainingWorkload(model, options);
  try {
    // the first step compiles every shader; the second finds them cached
    await workload.step(0);
    await workload.step(1);
    const { traffic, stop } = countGpuTraffic();
    let ms: number[];
    try {
      ({ ms } = await workload.timedSteps(2, options.steps));
    } finally {
      stop();
    }
    const stepMs = median(ms);
    const per = (n: number) => n / options.steps;
    return {
      bench: 'webgpu-host', backend: choice.backend, device: options.onGpu ? choice.device : "Dawn's null device", model: options.model, batch: options.batch, tokens: workload.tokens, rank: options.rank,
      checkpointing: options.checkpointing, steps: options.steps, step_ms: Number(stepMs.toFixed(1)),
      dispatches_per_step: per(traffic.dispatches), us_per_dispatch: Number(((1000 * stepMs) / per(traffic.dispatches)).toFixed(1)),
      uploads_per_step: per(traffic.uploads), upload_mib_per_step: Number((per(traffic.uploadBytes) / 2 ** 20).toFixed(2)), readbacks_per_step: per(traffic.readbacks),
    };
  } finally {
    await workload.dispose();
    model.dispose();
  }
}
