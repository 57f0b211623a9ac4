// Trained-looking adapters for tests, built by the one adapter factory (server/models/adapters.ts)
// as a run seeded `seed` builds them, but with B drawn away from zero (b_init: kaiming): ΔW ≠ 0,
// so every check of what an adapter changes can fail.
import * as tf from '@tensorflow/tfjs-core';
import type { Adapter } from '../../kernels/adapter/linear';
import { mixerCount, type ResolvedAdapterSpec } from '../../kernels/adapter/spec';
import { createAdapters, type AdapterTemplate } from '../../server/models/adapters';
import type { ModuleSize } from '../../server/models/modules';
import { seeded } from './tensors';

/**
 * Adapters for `modules`, keyed by name: A and B kaiming-uniform, the mixers as the template's
 * mixer_init says (kaiming unless set). With `mixerNoise`, each mixer is moved off its initial
 * value by U(±mixerNoise), as training moves it.
 */
export function trainedAdapters(modules: readonly ModuleSize[], template: Omit<AdapterTemplate, 'bInit'>, seed: number, mixerNoise = 0): Map<string, Adapter> {
  const adapters = createAdapters(modules, { ...template, bInit: 'kaiming' }, seed);
  if (mixerNoise > 0) {
    [...adapters.values()].forEach(({ spec, weights }, index) => {
      const initial = weights.mixers;
      weights.mixers = initial.map((m, i) => tf.tidy(() => tf.add(m, seeded([spec.r, spec.r], seed * 1000 + index * 7 + 500 + i, mixerNoise))) as tf.Tensor2D);
      tf.dispose(initial);
    });
  }
  return adapters;
}

/** One such adapter, for a module of `dIn` inputs and `dOut` outputs. */
export function trainedAdapter(dIn: number, dOut: number, template: Omit<AdapterTemplate, 'bInit'>, seed: number, mixerNoise = 0): Adapter {
  return trainedAdapters([{ name: 'module', dIn, dOut }], template, seed, mixerNoise).get('module')!;
}

/**
 * An adapter of `spec` for the kernels' own checks, every factor U(±1) from `seed` (A: seed,
 * B: seed + 1, non-zero so that every factor gets a gradient; mixer i: seed + 2 + i), A and B
 * scaled to U(±scale); with DoRA a magnitude 1.5 + U(±0.5) (seed + 7), away from the norms so
 * that every term counts.
 */
export function seededAdapter(spec: ResolvedAdapterSpec, seed: number, scale = 1): Adapter {
  return {
    spec,
    weights: {
      A: seeded([spec.r, spec.dIn], seed, scale) as tf.Tensor2D,
      B: seeded([spec.dOut, spec.r], seed + 1, scale) as tf.Tensor2D,
      mixers: Array.from({ length: mixerCount(spec) }, (_, i) => seeded([spec.r, spec.r], seed + 2 + i) as tf.Tensor2D),
      ...(spec.useDora ? { magnitude: tf.add(seeded([spec.dOut], seed + 7, 0.5), 1.5) as tf.Tensor1D } : {}),
    },
  };
}
