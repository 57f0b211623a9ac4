// Data-parallel training on the CPU backends. tfjs-backend-wasm computes on one thread in Node
// (tfjs#3830), so each micro-batch is split by rows into shards: the trainer's thread computes
// the first, worker threads (shard-worker.ts: each with its own backend, copy of the model and
// wasm heap) the others, at the same time. Each shard returns the gradient of its summed token
// losses; the trainer adds them and divides by the micro-batch's labelled-token count, which is
// the gradient of the whole micro-batch's mean loss, up to the order of summation. Dropout masks
// are drawn a sequence at a time (kernels/adapter/linear.ts), so the curve does not depend on how many
// workers there are.
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { ResolvedAdapterSpec } from '../../kernels/adapter/spec';
import type { BackendName } from '../../protocol/backends';
import type { Adapter } from '../../kernels/adapter/linear';
import { readValues, takeNumber, takeValues } from '../../kernels/backends/read';
import { WasmHeapExhausted } from '../../kernels/backends/wasm-kernels';
import { labelLogProbs, type EngineModel, type LoadModelOptions } from '../models/model';
import type { Batch } from './data';
import { flatConcat } from './optim';
import { SHARD_WORKER_FILE } from './plan-workers';

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

export interface ShardStep {
  /** Seeds the step's dropout masks (with each row's index in the batch). */
  dropoutSeed: number;
  checkpoint: boolean;
}

/** −Σ log p over a shard's labelled tokens, and its gradient as one flat vector (flatConcat of the parameters'). */
export function shardGradients(
  model: EngineModel,
  adapters: ReadonlyMap<string, Adapter>,
  params: readonly tf.Variable[],
  shard: Shard,
  step: ShardStep,
): { lossSum: tf.Scalar; grads: tf.Tensor1D } {
  const { value, grads } = tf.variableGrads(() => {
    const labels = tf.tensor2d(shard.labels, undefined, 'int32');
    const options = { training: true, dropoutSeed: step.dropoutSeed, firstSequence: shard.firstSequence, checkpoint: step.checkpoint };
    return tf.neg(tf.sum(labelLogProbs(model.logits(shard.inputIds, adapters, options), labels).logProbs)) as tf.Scalar;
  }, [...params]);
  const flat = flatConcat(params.map((v) => grads[v.name]!));
  tf.dispose(grads);
  return { lossSum: value, grads: flat };
}

/** Each row's summed log-likelihood of its labels (no dropout). */
export type Scorer = (rows: Pick<Batch, 'inputIds' | 'labels'>) => Promise<number[]>;

/** Summed log-likelihood of each row's labelled tokens, as a [rows] tensor. */
export function shardScores(model: EngineModel, adapters: ReadonlyMap<string, Adapter>, rows: Pick<Batch, 'inputIds' | 'labels'>): tf.Tensor1D {
  return tf.tidy(() => {
    const labels = tf.tensor2d(rows.labels, undefined, 'int32');
    return tf.sum(labelLogProbs(model.logits(rows.inputIds, adapters, { training: false }), labels).logProbs, 1) as tf.Tensor1D;
  });
}

/** A scorer that computes in this thread alone. */
export function localScorer(model: EngineModel, adapters: ReadonlyMap<string, Adapter>): Scorer {
  return async (rows) => Array.from(await takeValues(shardScores(model, adapters, rows)));
}

/** What a worker needs to compute shards: the backend, the model, and the adapters' frozen parts. */
export interface ShardWorkerInit {
  backend: BackendName;
  modelDir: string;
  /** Threads each of the worker's products takes (WorkerPlan.productThreads). */
  productThreads: number;
  adapters: { module: string; spec: ResolvedAdapterSpec; A: Float32Array; B: Float32Array; mixers: Float32Array[]; magnitude?: Float32Array }[];
  /** How the model loads: the base's stored formats, and the native store's matrices to map (their SharedArrayBuffers are shared, not copied). */
  load: Pick<LoadModelOptions, 'formats' | 'shared'>;
}

/** The adapters as a worker rebuilds them: specs and current values. */
export async function shardWorkerInit(backend: BackendName, modelDir: string, adapters: ReadonlyMap<string, Adapter>, productThreads: number, load: ShardWorkerInit['load'] = {}): Promise<ShardWorkerInit> {
  const values = async (t: tf.Tensor) => (await readValues(t)) as Float32Array;
  const list: ShardWorkerInit['adapters'] = [];
  for (const [module, { spec, weights }] of adapters) {
    list.push({
      module, spec, A: await values(weights.A), B: await values(weights.B), mixers: await Promise.all(weights.mixers.map(values)),
      ...(weights.magnitude ? { magnitude: await values(weights.magnitude) } : {}),
    });
  }
  return { backend, modelDir, productThreads, adapters: list, load };
}

/** Messages to a worker: new parameter values (for the requests after it), a shard to compute, or to end. */
export type ShardRequest =
  | { kind: 'close' }
  | { kind: 'params'; params: Float32Array }
  | { kind: 'gradients'; id: number; shard: Shard; step: ShardStep }
  | { kind: 'scores'; id: number; shard: Shard };

export interface ShardGradients {
  lossSum: number;
  grads: Float32Array;
}

export type ShardReply =
  | { type: 'ready' }
  | { type: 'gradients'; id: number; result: ShardGradients }
  | { type: 'scores'; id: number; result: number[] }
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
  resolve: (result: ShardGradients | number[]) => void;
  reject: (error: Error) => void;
}

/** Worker threads that compute shards, one request at a time each. */
export class ShardWorkers {
  private readonly pending = new Map<number, Pending>();
  private readonly exited: Promise<void>[] = [];
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
      await pool.close();
      throw error;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  private watch(worker: Worker, index: number): Promise<void> {
    const name = `data-parallel worker ${index + 1} of ${this.workers.length}`;
    this.exited.push(new Promise((resolve) => worker.once('exit', () => resolve())));
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
          this.pending.get(reply.id)?.resolve(reply.result);
          this.pending.delete(reply.id);
        }
      });
      worker.on('error', (error) => fail(new ShardWorkerError(`${name} failed: ${error.message}`)));
      worker.on('exit', (code) => {
        if (!this.closing) fail(new ShardWorkerError(`${name} exited (code ${code})`));
      });
    });
  }

  /** Parameter values for every later request, to every worker. */
  setParams(params: Float32Array): void {
    const message: ShardRequest = { kind: 'params', params };
    for (const worker of this.workers) worker.postMessage(message);
  }

  /** Each shard's summed loss and flat gradient, shard i computed by worker i. */
  gradients(shards: readonly Shard[], step: ShardStep): Promise<ShardGradients[]> {
    return this.requests<ShardGradients>(shards.map((shard) => (id) => ({ kind: 'gradients', id, shard, step })));
  }

  /** Each shard's row scores (see shardScores), shard i computed by worker i. */
  scores(shards: readonly Shard[]): Promise<number[][]> {
    return this.requests<number[]>(shards.map((shard) => (id) => ({ kind: 'scores', id, shard })));
  }

  private requests<T extends ShardGradients | number[]>(make: ((id: number) => ShardRequest)[]): Promise<T[]> {
    if (this.failure) return Promise.reject(this.failure);
    return Promise.all(
      make.map(
        (request, i) =>
          new Promise<T>((resolve, reject) => {
            const id = this.nextId++;
            this.pending.set(id, { resolve: resolve as (result: ShardGradients | number[]) => void, reject });
            this.workers[i]!.postMessage(request(id));
          }),
      ),
    );
  }

  /**
   * Ends every worker once it is between two tasks (shard-worker.ts), and waits until each has:
   * a request in flight is finished first, as Worker.terminate in a native product aborts the
   * process.
   */
  async close(): Promise<void> {
    this.closing = true;
    const close: ShardRequest = { kind: 'close' };
    for (const worker of this.workers) worker.postMessage(close);
    await Promise.all(this.exited);
  }
}

/**
 * The gradient of each micro-batch's mean loss, as one flat vector in the order of the
 * parameters' map (optim.ts flatConcat), its shards computed here and by the workers (none: the
 * whole batch here).
 */
export class DataParallel {
  private readonly variables: tf.Variable[];

  constructor(
    private readonly model: EngineModel,
    private readonly adapters: ReadonlyMap<string, Adapter>,
    params: ReadonlyMap<string, tf.Variable>,
    private readonly workers: ShardWorkers | null,
  ) {
    this.variables = [...params.values()];
  }

  /** Shards a batch is split into: this thread and each worker. */
  get shards(): number {
    return 1 + (this.workers?.size ?? 0);
  }

  async gradients(batch: Batch, step: ShardStep): Promise<{ loss: number; grad: tf.Tensor1D }> {
    await this.broadcast();
    const [own, ...others] = splitRows(batch, this.shards);
    // the workers' requests go out before this thread computes its own shard
    const remote = this.workers && others.length ? this.workers.gradients(others, step) : Promise.resolve([]);
    const local = async () => {
      const { lossSum, grads } = shardGradients(this.model, this.adapters, this.variables, own!, step);
      return { lossSum: await takeNumber(lossSum), grads };
    };
    const [mine, theirs] = await Promise.all([local(), remote]);
    const counted = batch.targetTokens;
    const grad = tf.tidy(() => tf.div(theirs.reduce<tf.Tensor1D>((sum, r) => tf.add(sum, tf.tensor1d(r.grads)), mine.grads), counted) as tf.Tensor1D);
    mine.grads.dispose();
    return { loss: theirs.reduce((sum, r) => sum + r.lossSum, mine.lossSum) / counted, grad };
  }

  /** Scores batches as the parameters are now (they go to the workers once, here), shared like gradients. */
  async scorer(): Promise<Scorer> {
    await this.broadcast();
    const local = localScorer(this.model, this.adapters);
    return async (batch) => {
      const [own, ...others] = splitRows(batch, this.shards);
      // the workers' requests go out before this thread computes its own shard
      const remote = this.workers && others.length ? this.workers.scores(others) : Promise.resolve([]);
      const [mine, theirs] = await Promise.all([local(own!), remote]);
      return [...mine, ...theirs.flat()];
    };
  }

  /** The parameters' current values, to every worker. */
  private async broadcast(): Promise<void> {
    if (!this.workers || this.variables.length === 0) return;
    this.workers.setParams((await takeValues(flatConcat(this.variables))) as Float32Array);
  }
}
