// The training workload the benchmarks share: MoSLoRA of rank r on q, k, v, up, down, with
// trainable weights, and a deterministic batch of token ids.
import * as tf from '@tensorflow/tfjs-core';
import type { Adapter } from '../kernels/linear';
import { createAdapters, makeTrainable } from '../server/models/adapters';
import type { LinearModule } from '../server/models/modules';

export const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'up_proj', 'down_proj'];

export function trainableMoslora(modules: readonly LinearModule[], rank: number): { adapters: Map<string, Adapter>; variables: tf.Variable[] } {
  const { adapters } = createAdapters(modules, TARGETS, { method: 'moslora', r: rank, alpha: 2 * rank, bInit: 'kaiming', dropout: 0.05 }, 1);
  return { adapters, variables: makeTrainable(adapters) };
}

export function tokenBatch(batch: number, tokens: number, vocab: number): tf.Tensor2D {
  return tf.tensor2d(Array.from({ length: batch }, (_, b) => Array.from({ length: tokens }, (_, t) => (b * 7919 + t * 104729) % vocab)), undefined, 'int32');
}
