// Data-parallel training on the CPU backends. tfjs-backend-wasm computes on one thread in Node
// (tfjs#3830), so each micro-batch is split by rows into shards: the trainer's thread computes
// the first, worker threads (shard-worker.ts: each with its own backend, copy of the model and
// wasm heap) the others, at the same time. Each shard returns the gradient of its summed token
// losses; the trainer adds them and divides by the micro-batch's labelled-token count, which is
// the gradient of the whole micro-batch's mean loss, up to the order of summation. Dropout masks
// are drawn a sequence at a time (kernels/linear.ts), so the curve does not depend on how many
// workers there are.
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { ResolvedAdapterSpec } from '../../kernels/adapter';
import type { BackendName } from '../../kernels/backend-names';
import type { Adapter } from '../../kernels/linear';
import { readValues, takeNumber, takeValues } from '../../kernels/read';
import { WasmHeapExhausted } from '../../kernels/wasm-kernels';
import { labelLogProbs } from '../models/model';
import type { Batch } from './data';
import { SHARD_WORKER_FILE } from './plan-workers';
import type { EngineModel } from './train';

/** Rows of a batch, and where they start in it (for their dropout masks). */
export interface Shard {
  inputIds: number[][];
  labels: number[][];
  firstSequence: number;
}

/** The batch in at most `parts` contiguous runs of rows, as even as the rows allow. */
export function splitRows(batch: Pick<Batch, 'inputIds' | 'labels'>, parts: number): Shard[] {
  const rows = batch.inputIds.length;
  const count = Math.max(1, Math.min(parts, rows));
  return Array.from({ length: count }, (_, i) => {
    const [start, end] = [Math.floor((i * rows) / count), Math.floor(((i + 1) * rows) / count)];
    return { inputIds: batch.inputIds.slice(start, end), labels: batch.labels.slice(start, end), firstSequence: start };
  });
}

/** The adapters' trainable tensors by name, module by module: A, B, then the learned mixers. */
export function trainableParams(adapters: ReadonlyMap<string, Adapter>): Map<string, tf.Variable> {
  const params = new Map<string, tf.Variable>();
  for (const [module, { spec, weights }] of adapters) {
    params.set(`${module}.lora_A`, weights.A as tf.Variable);
    params.set(`${module}.lora_B`, weights.B as tf.Variable);
    if (spec.method !== 'moslora-fixed') weights.mixers.forEach((m, i) => params.set(`${module}.lora_AB.${i}`, m as tf.Variable));
  }
  return params;
}

export interface ShardStep {
  /** Seeds the step's dropout masks (with each row's index in the batch). */
  dropoutSeed: number;
  checkpoint: boolean;
}

/** −Σ log p over a shard's labelled tokens, and its gradient, every parameter's flattened in turn. */
export function shardGradients(
  model: EngineModel,
  adapters: ReadonlyMap<string, Adapter>,
  params: readonly tf.Variable[],
  shard: Shard,
  step: ShardStep,
): { lossSum: tf.Scalar; grads: tf.Tensor1D } {
  const { value, grads } = tf.variableGrads(() => {
    const ids = tf.tensor2d(shard.inputIds, undefined, 'int32');
    const labels = tf.tensor2d(shard.labels, undefined, 'int32');
    const options = { training: true, dropoutSeed: step.dropoutSeed, firstSequence: shard.firstSequence, checkpoint: step.checkpoint };
    return tf.neg(tf.sum(labelLogProbs(model.logits(ids, adapters, options), labels).logProbs)) as tf.Scalar;
  }, [...params]);
  const flat = tf.tidy(() => tf.concat(params.map((v) => tf.reshape(grads[v.name]!, [-1]))) as tf.Tensor1D);
  tf.dispose(grads);
  return { lossSum: value, grads: flat };
}

/** What a worker needs to compute shards: the backend, the model, and the adapters' frozen parts. */
export interface ShardWorkerInit {
  backend: BackendName;
  modelDir: string;
  adapters: { module: string; spec: ResolvedAdapterSpec; A: Float32Array; B: Float32Array; mixers: Float32Array[] }[];
}

/** The adapters as a worker rebuilds them: specs and current values. */
export async function shardWorkerInit(backend: BackendName, modelDir: string, adapters: ReadonlyMap<string, Adapter>): Promise<ShardWorkerInit> {
  const values = async (t: tf.Tensor) => (await readValues(t)) as Float32Array;
  const list: ShardWorkerInit['adapters'] = [];
  for (const [module, { spec, weights }] of adapters) {
    list.push({ module, spec, A: await values(weights.A), B: await values(weights.B), mixers: await Promise.all(weights.mixers.map(values)) });
  }
  return { backend, modelDir, adapters: list };
}

export interface ShardRequest {
  id: number;
  /** Every trainable parameter's current values, in trainableParams order. */
  params: Float32Array;
  shard: Shard;
  step: ShardStep;
}

export type ShardReply =
  | { type: 'ready' }
  | { type: 'result'; id: number; lossSum: number; grads: Float32Array }
  | { type: 'error'; message: string; heapExhausted: boolean };

/** A worker stopped (or never started): the run cannot go on with a shard missing. */
export class ShardWorkerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShardWorkerError';
  }
}

export function isShardWorkerError(error: unknown): error is ShardWorkerError {
  return error instanceof ShardWorkerError;
}


interface Pending {
  resolve: (reply: { lossSum: number; grads: Float32Array }) => void;
  reject: (error: Error) => void;
}

/** Worker threads that compute shards, one request at a time each. */
export class ShardWorkers {
  private readonly pending = new Map<number, Pending>();
  private failure: Error | null = null;
  private nextId = 0;
  private closing = false;

  private constructor(private readonly workers: Worker[]) {}

  /** Starts `count` workers and waits until each has loaded the model. */
  static async start(count: number, init: ShardWorkerInit, file = SHARD_WORKER_FILE): Promise<ShardWorkers> {
    if (!existsSync(file)) throw new ShardWorkerError(`the data-parallel worker ${file} is missing (run \`npm run build\`)`);
    const workers = Array.from({ length: count }, () => new Worker(file, { workerData: init }));
    const pool = new ShardWorkers(workers);
    const ready = workers.map((worker, index) => pool.watch(worker, index));
    try {
      await Promise.all(ready);
    } catch (error) {
      await pool.terminate();
      throw error;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  private watch(worker: Worker, index: number): Promise<void> {
    const name = `data-parallel worker ${index + 1} of ${this.workers.length}`;
    return new Promise((resolveReady, rejectReady) => {
      const fail = (error: Error) => {
        this.failure ??= error;
        rejectReady(error);
        for (const { reject } of this.pending.values()) reject(error);
        this.pending.clear();
      };
      worker.on('message', (reply: ShardReply) => {
        if (reply.type === 'ready') resolveReady();
        else if (reply.type === 'error') fail(reply.heapExhausted ? new WasmHeapExhausted(`${name}: ${reply.message}`) : new ShardWorkerError(`${name}: ${reply.message}`));
        else {
          this.pending.get(reply.id)?.resolve(reply);
          this.pending.delete(reply.id);
        }
      });
      worker.on('error', (error) => fail(new ShardWorkerError(`${name} failed: ${error.message}`)));
      worker.on('exit', (code) => {
        if (!this.closing) fail(new ShardWorkerError(`${name} exited (code ${code})`));
      });
    });
  }

  /** Each shard's summed loss and flat gradient, shard i computed by worker i. */
  compute(params: Float32Array, shards: readonly Shard[], step: ShardStep): Promise<{ lossSum: number; grads: Float32Array }[]> {
    if (this.failure) return Promise.reject(this.failure);
    return Promise.all(
      shards.map(
        (shard, i) =>
          new Promise<{ lossSum: number; grads: Float32Array }>((resolve, reject) => {
            const id = this.nextId++;
            this.pending.set(id, { resolve, reject });
            const request: ShardRequest = { id, params, shard, step };
            this.workers[i]!.postMessage(request);
          }),
      ),
    );
  }

  async terminate(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * The gradient of each micro-batch's mean loss, its shards computed here and by the workers
 * (none: the whole batch here).
 */
export class DataParallel {
  private readonly variables: tf.Variable[];

  constructor(
    private readonly model: EngineModel,
    private readonly adapters: ReadonlyMap<string, Adapter>,
    private readonly params: ReadonlyMap<string, tf.Variable>,
    private readonly workers: ShardWorkers | null,
  ) {
    this.variables = [...params.values()];
  }

  /** Shards a batch is split into: this thread and each worker. */
  get shards(): number {
    return 1 + (this.workers?.size ?? 0);
  }

  async gradients(batch: Batch, step: ShardStep): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
    const [own, ...others] = splitRows(batch, this.shards);
    const remote = this.workers && others.length ? this.workers.compute(await this.flatParams(), others, step) : Promise.resolve([]);
    const local = async () => {
      const { lossSum, grads } = shardGradients(this.model, this.adapters, this.variables, own!, step);
      return { lossSum: await takeNumber(lossSum), grads };
    };
    const [mine, theirs] = await Promise.all([local(), remote]);
    const counted = batch.targetTokens;
    const total = tf.tidy(() => tf.div(theirs.reduce<tf.Tensor1D>((sum, r) => tf.add(sum, tf.tensor1d(r.grads)), mine.grads), counted) as tf.Tensor1D);
    mine.grads.dispose();
    const parts = tf.split(total, this.variables.map((v) => v.size));
    total.dispose();
    const grads = new Map([...this.params.keys()].map((name, i) => [name, tf.reshape(parts[i]!, this.variables[i]!.shape)]));
    tf.dispose(parts);
    return { loss: theirs.reduce((sum, r) => sum + r.lossSum, mine.lossSum) / counted, grads };
  }

  private async flatParams(): Promise<Float32Array> {
    return (await takeValues(tf.tidy(() => tf.concat(this.variables.map((v) => tf.reshape(v, [-1])))))) as Float32Array;
  }
}
