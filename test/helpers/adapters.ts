// Trained-looking adapters for tests, built by the one adapter factory (server/models/adapters.ts)
// as a run seeded `seed` builds them, but with B drawn away from zero (b_init: kaiming): ΔW ≠ 0,
// so every check of what an adapter changes can fail.
import * as tf from '@tensorflow/tfjs-core';
import type { Adapter } from '../../kernels/adapter/linear';
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
