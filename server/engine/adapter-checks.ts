// An adapter is used (generated with, merged, exported, combined) only when every value of every
// factor is finite: one NaN or infinity makes every output of its module NaN, so generate printed
// NUL characters and a merge would write a broken model.
import type * as tf from '@tensorflow/tfjs-core';
import type { Adapter } from '../../kernels/adapter/linear';
import { readValues } from '../../kernels/backends/read';

/** Throws naming the first factor of an adapter in `source` (its folder) that holds a NaN or an infinity, as the file names the tensor. */
export async function checkFiniteAdapter(source: string, adapters: ReadonlyMap<string, Adapter>): Promise<void> {
  for (const [module, { weights }] of adapters) {
    const factors: [string, tf.Tensor][] = [
      ['lora_A.weight', weights.A],
      ['lora_B.weight', weights.B],
      ...weights.mixers.map((m, i): [string, tf.Tensor] => [weights.mixers.length === 1 ? 'lora_AB.weight' : `lora_AB.${i}.weight`, m]),
      ...(weights.magnitude ? [['lora_magnitude_vector', weights.magnitude] as [string, tf.Tensor]] : []),
    ];
    for (const [factor, tensor] of factors) {
      const values = Array.from(await readValues(tensor));
      const first = values.findIndex((v) => !Number.isFinite(v));
      if (first < 0) continue;
      const count = values.filter((v) => !Number.isFinite(v)).length;
      const columns = tensor.shape[1];
      const at = columns === undefined ? `${first}` : `${Math.floor(first / columns)}, ${first % columns}`;
      throw new Error(
        `${source}: tensor "base_model.model.${module}.${factor}" holds ${count} of ${values.length} values that are not finite ` +
          `(the first, ${values[first]}, at [${at}]); the adapter is broken: train it again, or resume its run from a checkpoint before it diverged`,
      );
    }
  }
}
