// The training workload the benchmarks share: a model (a folder, or the ~100M random Llama),
// and full MoSLoRA training steps on it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Adapter } from '../kernels/linear';
import { takeNumber } from '../kernels/read';
import { createAdapters, makeTrainable } from '../server/models/adapters';
import { AdamW } from '../server/engine/optim';
import { causalLmLoss, CausalLM } from '../server/models/model';
import { LLAMA_100M, writeRandomLlama } from './random-llama';

export const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'up_proj', 'down_proj'];

/**
 * MoSLoRA of rank r on q, k, v, up, down of a model, trained one full step at a time (forward,
 * backward, AdamW) on a fixed batch of deterministic token ids, `tokens` per sequence (at most
 * the model's context length).
 */
export class TrainingWorkload {
  readonly tokens: number;
  private readonly adapters: Map<string, Adapter>;
  private readonly params: Map<string, tf.Variable>;
  private readonly ids: tf.Tensor2D;
  private readonly optimizer = new AdamW();

  constructor(
    private readonly model: CausalLM,
    private readonly options: { batch: number; tokens: number; rank: number; checkpointing: boolean },
  ) {
    const { rank } = options;
    ({ adapters: this.adapters } = createAdapters(model.linearModules, TARGETS, { method: 'moslora', r: rank, alpha: 2 * rank, bInit: 'kaiming', dropout: 0.05 }, 1));
    this.params = new Map(makeTrainable(this.adapters).map((v) => [v.name, v]));
    const vocab = model.config.vocabSize;
    this.tokens = Math.min(options.tokens, model.config.maxPositions);
    this.ids = tf.tensor2d(Array.from({ length: options.batch }, (_, b) => Array.from({ length: this.tokens }, (_, t) => (b * 7919 + t * 104729) % vocab)), undefined, 'int32');
  }

  /** One step, waiting for its loss, which it returns; the seed varies the dropout masks. */
  async step(seed: number): Promise<number> {
    const { value, grads } = tf.variableGrads(
      () => causalLmLoss(this.model.logits(this.ids, this.adapters, { training: true, dropoutSeed: seed, checkpoint: this.options.checkpointing }), this.ids),
      [...this.params.values()],
    );
    this.optimizer.apply(this.params, new Map([...this.params].map(([name, v]) => [name, grads[v.name]!])), 1e-4);
    tf.dispose(Object.values(grads));
    return takeNumber(value);
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

  dispose(): void {
    this.optimizer.dispose();
    tf.dispose([this.ids, ...this.params.values()]);
  }
}

/** A model folder, or "100m": the ~100M random Llama, written to a scratch folder for the load. */
export async function loadBenchModel(model: string): Promise<CausalLM> {
  if (model !== '100m') return CausalLM.load(model);
  const scratch = await mkdtemp(join(tmpdir(), 'moslora-bench-model-'));
  try {
    await writeRandomLlama(scratch, LLAMA_100M, 'F32');
    return await CausalLM.load(scratch);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
