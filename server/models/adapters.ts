// Fresh adapters for the modules that target_modules selects, one spec for all of them.

import * as tf from '@tensorflow/tfjs-core';
import { resolveAdapterSpec, type AdapterSpec } from '../../kernels/adapter';
import { disposeAdapterWeights, initAdapterWeights } from '../../kernels/init';
import type { Adapter } from '../../kernels/linear';
import { matchTargetModules, type LinearModule } from './modules';

/** An adapter spec without the dimensions, which come from each module. */
export type AdapterTemplate = Omit<AdapterSpec, 'dIn' | 'dOut'>;

// initAdapterWeights draws from seed, seed + 1 and seed + 2 + i for mixer i; modules get seeds
// this far apart so that no two share a draw (up to 61 mixers in a chain).
const SEED_STRIDE = 64;

/**
 * Adapters, keyed by module name, for the modules `targets` selects (PEFT's rules, see
 * matchTargetModules). `unmatched` lists the entries that selected nothing, for a warning;
 * selecting no module at all is an error.
 */
export function createAdapters(
  modules: readonly LinearModule[],
  targets: string | readonly string[],
  template: AdapterTemplate,
  seed: number,
): { adapters: Map<string, Adapter>; unmatched: string[] } {
  const { modules: selected, unmatched } = matchTargetModules(
    modules.map((m) => m.name),
    targets,
  );
  if (selected.length === 0) {
    const examples = [...new Set(modules.map((m) => m.name.split('.').at(-1)!))].join(', ');
    throw new Error(`target_modules: ${JSON.stringify(targets)} selects no linear module of this model; its modules end in ${examples}`);
  }
  const adapters = new Map<string, Adapter>();
  modules.forEach((module, index) => {
    if (!selected.includes(module.name)) return;
    const spec = resolveAdapterSpec({ ...template, dIn: module.dIn, dOut: module.dOut });
    adapters.set(module.name, { spec, weights: initAdapterWeights(spec, seed + index * SEED_STRIDE) });
  });
  return { adapters, unmatched };
}

/**
 * Turns every adapter's weights into variables, in place, disposing the tensors they replace
 * (moslora-fixed mixers stay frozen); returns the trainable variables by name, module by module:
 * `<module>.lora_A`, `<module>.lora_B`, then `<module>.lora_AB.<i>` for each learned mixer.
 */
export function makeTrainable(adapters: ReadonlyMap<string, Adapter>): Map<string, tf.Variable> {
  const trainable = new Map<string, tf.Variable>();
  for (const [module, adapter] of adapters) {
    const { A, B, mixers } = adapter.weights;
    const learnMixers = adapter.spec.method !== 'moslora-fixed';
    const variables = { A: tf.variable(A), B: tf.variable(B), mixers: mixers.map((m) => tf.variable(m, learnMixers)) };
    adapter.weights = variables;
    tf.dispose([A, B, ...mixers]);
    trainable.set(`${module}.lora_A`, variables.A).set(`${module}.lora_B`, variables.B);
    if (learnMixers) variables.mixers.forEach((m, i) => trainable.set(`${module}.lora_AB.${i}`, m));
  }
  return trainable;
}

export function disposeAdapters(adapters: ReadonlyMap<string, Adapter>): void {
  for (const { weights } of adapters.values()) disposeAdapterWeights(weights);
}
