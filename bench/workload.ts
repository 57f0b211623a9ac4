// The training workload the benchmarks share: a model (a folder, or the ~100M random Llama),
// and full MoSLoRA training steps on it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendName } from '../protocol/backends';
import type { Adapter } from '../kernels/adapter/linear';
import type { Batch } from '../server/engine/data';
import { adaptersFor, makeTrainable } from '../server/models/adapters';
import { AdamW } from '../server/engine/optim';
import { DataParallel, shardWorkerInit, ShardWorkers } from '../server/engine/parallel';
import { CausalLM } from '../server/models/model';
import { GPT2_SMALL_NARROW, writeRandomGpt2 } from './random-gpt2';
import { LLAMA_100M, LLAMA_100M_NARROW, writeRandomLlama } from './random-llama';

/** The adapted modules of a Llama-family model. */
export const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'up_proj', 'down_proj'];
/** The adapted modules of a GPT-2 model: c_attn (q, k and v in one), c_fc and both c_proj. */
export const GPT2_TARGETS = ['c_attn', 'c_proj', 'c_fc'];

/** The workload's shape: sequences per step, tokens per sequence, adapter rank, gradient checkpointing. */
export interface WorkloadOptions {
  batch: number;
  tokens: number;
  rank: number;
  checkpointing: boolean;
}

/** What a benchmark of the workload records about the run: its backend, model and shape. */
export interface WorkloadRecord extends WorkloadOptions {
  backend: string;
  model: string;
}

/**
 * MoSLoRA of rank r on q, k, v, up, down of a model, trained one full step at a time (forward,
 * backward, clipping to norm 1 as training does by default, AdamW) on a fixed batch of deterministic token ids, `tokens` per sequence (at most
 * the model's context length), through the engine's gradient path (server/engine/parallel.ts):
 * in this thread, or shared with worker threads.
 */
export class TrainingWorkload {
  readonly tokens: number;
  private readonly adapters: Map<string, Adapter>;
  private readonly params: Map<string, tf.Variable>;
  private readonly batch: Batch;
  private readonly optimizer = new AdamW();
  private workers: ShardWorkers | null = null;
  private parallel: DataParallel;

  constructor(
    private readonly model: CausalLM,
    private readonly options: WorkloadOptions,
  ) {
    const { rank } = options;
    ({ adapters: this.adapters } = adaptersFor(model.linearModules, model.config.family === 'gpt2' ? GPT2_TARGETS : TARGETS, { method: 'moslora', r: rank, alpha: 2 * rank, bInit: 'kaiming', dropout: 0.05 }, 1));
    this.params = makeTrainable(this.adapters);
    const vocab = model.config.vocabSize;
    this.tokens = Math.min(options.tokens, model.config.maxPositions);
    const ids = Array.from({ length: options.batch }, (_, b) => Array.from({ length: this.tokens }, (_, t) => (b * 7919 + t * 104729) % vocab));
    this.batch = { inputIds: ids, labels: ids, targetTokens: options.batch * (this.tokens - 1) };
    this.parallel = new DataParallel(model, this.adapters, this.params, null);
  }

  /** From now on each step's batch is split with `count` worker threads, which load the model from modelDir. */
  async shareWith(count: number, modelDir: string): Promise<void> {
    this.workers = await ShardWorkers.start(count, await shardWorkerInit(tf.getBackend() as BackendName, modelDir, this.adapters, 1));
    this.parallel = new DataParallel(this.model, this.adapters, this.params, this.workers);
  }

  /** One step, waiting for its loss, which it returns; the seed varies the dropout masks. */
  async step(seed: number): Promise<number> {
    const { loss, grad } = await this.parallel.gradients(this.batch, { dropoutSeed: seed, checkpoint: this.options.checkpointing });
    await this.optimizer.applyClipped(this.params, grad, 1e-4, 1);
    grad.dispose();
    return loss;
  }

  /** Steps first … first + count − 1, each timed; their milliseconds and losses. */
  async timedSteps(first: number, count: number): Promise<{ ms: number[]; losses: number[] }> {
    const ms: number[] = [];
    const losses: number[] = [];
    for (let step = first; step < first + count; step++) {
      const started = performance.now();
      losses.push(await this.step(step));
      ms.push(performance.now() - started);
    }
    return { ms, losses };
  }

  /** Trainable parameters of the adapters (A, B and the mixers). */
  get trainable(): number {
    return [...this.params.values()].reduce((n, v) => n + v.size, 0);
  }

  async dispose(): Promise<void> {
    await this.workers?.close();
    this.optimizer.dispose();
    tf.dispose([...this.params.values()]);
  }
}

/** A model folder, or one of RANDOM_MODELS, written to a scratch folder for the load. */
export async function loadBenchModel(model: string): Promise<CausalLM> {
  return withBenchModel(model, (dir) => CausalLM.load(dir));
}

/** Models with random weights, by name: "100m" (the ~100M Llama), "100m-narrow" (its structure at small widths), "gpt2-narrow" (GPT-2 small's at small widths). */
const RANDOM_MODELS: Record<string, (dir: string) => Promise<void>> = {
  '100m': (dir) => writeRandomLlama(dir, LLAMA_100M, 'F32'),
  '100m-narrow': (dir) => writeRandomLlama(dir, LLAMA_100M_NARROW, 'F32'),
  'gpt2-narrow': (dir) => writeRandomGpt2(dir, GPT2_SMALL_NARROW, 'F32'),
};

/** Runs `use` with the folder of a model folder, or of one of RANDOM_MODELS (written to a scratch folder, removed after). */
export async function withBenchModel<T>(model: string, use: (dir: string) => Promise<T>): Promise<T> {
  const write = RANDOM_MODELS[model];
  if (!write) return use(model);
  const scratch = await mkdtemp(join(tmpdir(), 'moslora-bench-model-'));
  try {
    await write(scratch);
    return await use(scratch);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
