// The training workload the benchmarks share: a model (a folder, or the ~100M random Llama),
// MoSLoRA of rank r on q, k, v, up, down with trainable weights, and a deterministic batch of
// token ids.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Adapter } from '../kernels/linear';
import { createAdapters, makeTrainable } from '../server/models/adapters';
import { CausalLM } from '../server/models/model';
import type { LinearModule } from '../server/models/modules';
import { LLAMA_100M, writeRandomLlama } from './random-llama';

export const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'up_proj', 'down_proj'];

export function trainableMoslora(modules: readonly LinearModule[], rank: number): { adapters: Map<string, Adapter>; variables: tf.Variable[] } {
  const { adapters } = createAdapters(modules, TARGETS, { method: 'moslora', r: rank, alpha: 2 * rank, bInit: 'kaiming', dropout: 0.05 }, 1);
  return { adapters, variables: makeTrainable(adapters) };
}

export function tokenBatch(batch: number, tokens: number, vocab: number): tf.Tensor2D {
  return tf.tensor2d(Array.from({ length: batch }, (_, b) => Array.from({ length: tokens }, (_, t) => (b * 7919 + t * 104729) % vocab)), undefined, 'int32');
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
