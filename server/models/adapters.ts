// The one adapter factory: which modules target_modules selects, and fresh (or saved) adapters
// for them, one spec for all. The engine, the benchmarks and the tests all build adapters here.

import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { resolveAdapterSpec, trainableParameterCount, type AdapterSpec } from '../../kernels/adapter/spec';
import { disposeAdapterWeights, initAdapterWeights } from '../../kernels/adapter/init';
import { doraWeightNorms, type Adapter, type BaseLinear } from '../../kernels/adapter/linear';
import { matchTargetModules, type ModuleSize } from './modules';

/** An adapter spec without the dimensions, which come from each module. */
export type AdapterTemplate = Omit<AdapterSpec, 'dIn' | 'dOut'>;

/**
 * The modules `targets` selects, in the model's order (PEFT's rules, see matchTargetModules),
 * and the entries that selected nothing.
 */
export function selectModules<M extends ModuleSize>(modules: readonly M[], targets: string | readonly string[]): { selected: M[]; unmatched: string[] } {
  const { modules: names, unmatched } = matchTargetModules(
    modules.map((m) => m.name),
    targets,
  );
  const chosen = new Set(names);
  return { selected: modules.filter((m) => chosen.has(m.name)), unmatched };
}

/**
 * The seed of one adapter tensor (`lora_A`, `lora_B`, `lora_AB.<i>`) of a module in a run seeded
 * `seed`: 48 bits of SHA-256 of the three. Runs of different seeds, modules and tensors draw
 * independent streams whatever the model's size, the chain's length or the module's position.
 */
export function tensorSeed(seed: number, module: string, tensor: string): number {
  return createHash('sha256').update(JSON.stringify([seed, module, tensor])).digest().readUIntBE(0, 6);
}

/** A module's frozen weight, which DoRA adapters start from (EngineModel.base). */
export type BaseOf = (module: string) => BaseLinear;

/** The values createAdapters would train for `modules`: known from the modules' shapes, before any weight loads. */
export function trainableValues(modules: readonly ModuleSize[], template: AdapterTemplate): number {
  return modules.reduce((n, module) => n + trainableParameterCount(resolveAdapterSpec({ ...template, dIn: module.dIn, dOut: module.dOut })), 0);
}

/**
 * Adapters for `modules`, keyed by module name: the weights `saved` holds for a module (a
 * resumed run's checkpoint), else fresh ones from the run's seed. A fresh DoRA adapter's
 * magnitude is ‖W + ΔW‖ of its module's weight at the start (PEFT's), so `baseOf` is needed then.
 */
export function createAdapters(
  modules: readonly ModuleSize[],
  template: AdapterTemplate,
  seed: number,
  saved?: ReadonlyMap<string, Adapter>,
  baseOf?: BaseOf,
): Map<string, Adapter> {
  const adapters = new Map<string, Adapter>();
  for (const module of modules) {
    const spec = resolveAdapterSpec({ ...template, dIn: module.dIn, dOut: module.dOut });
    const kept = saved?.get(module.name)?.weights;
    if (kept) {
      if (spec.useDora !== (kept.magnitude !== undefined)) {
        throw new Error(`${module.name}: the saved adapter ${kept.magnitude ? 'has' : 'has no'} DoRA magnitude (lora_magnitude_vector) but the config says use_dora: ${spec.useDora}`);
      }
      adapters.set(module.name, { spec, weights: kept });
      continue;
    }
    const weights = initAdapterWeights(spec, (tensor) => tensorSeed(seed, module.name, tensor));
    if (spec.useDora) {
      if (!baseOf) throw new Error(`${module.name}: a DoRA adapter (use_dora) starts from its module's weight, and none was given`);
      weights.magnitude = doraWeightNorms(baseOf(module.name), spec, weights);
    }
    adapters.set(module.name, { spec, weights });
  }
  return adapters;
}

/**
 * Adapters for the modules `targets` selects; `unmatched` lists the entries that selected
 * nothing, for a warning. Selecting no module at all is an error.
 */
export function adaptersFor(
  modules: readonly ModuleSize[],
  targets: string | readonly string[],
  template: AdapterTemplate,
  seed: number,
  baseOf?: BaseOf,
): { adapters: Map<string, Adapter>; unmatched: string[] } {
  const { selected, unmatched } = selectModules(modules, targets);
  if (selected.length === 0) {
    const examples = [...new Set(modules.map((m) => m.name.split('.').at(-1)!))].join(', ');
    throw new Error(`target_modules: ${JSON.stringify(targets)} selects no linear module of this model; its modules end in ${examples}`);
  }
  return { adapters: createAdapters(selected, template, seed, undefined, baseOf), unmatched };
}

/**
 * Turns every adapter's weights into variables, in place, disposing the tensors they replace
 * (moslora-fixed mixers stay frozen); returns the trainable variables by name, module by module:
 * `<module>.lora_A`, `<module>.lora_B`, then `<module>.lora_AB.<i>` for each learned mixer, then
 * DoRA's `<module>.lora_magnitude_vector`.
 */
export function makeTrainable(adapters: ReadonlyMap<string, Adapter>): Map<string, tf.Variable> {
  const trainable = new Map<string, tf.Variable>();
  for (const [module, adapter] of adapters) {
    const { A, B, mixers, magnitude } = adapter.weights;
    const learnMixers = adapter.spec.method !== 'moslora-fixed';
    const variables = {
      A: tf.variable(A),
      B: tf.variable(B),
      mixers: mixers.map((m) => tf.variable(m, learnMixers)),
      ...(magnitude ? { magnitude: tf.variable(magnitude) } : {}),
    };
    adapter.weights = variables;
    tf.dispose([A, B, ...mixers, ...(magnitude ? [magnitude] : [])]);
    trainable.set(`${module}.lora_A`, variables.A).set(`${module}.lora_B`, variables.B);
    if (learnMixers) variables.mixers.forEach((m, i) => trainable.set(`${module}.lora_AB.${i}`, m));
    if (variables.magnitude) trainable.set(`${module}.lora_magnitude_vector`, variables.magnitude);
  }
  return trainable;
}

export function disposeAdapters(adapters: ReadonlyMap<string, Adapter>): void {
  for (const { weights } of adapters.values()) disposeAdapterWeights(weights);
}
