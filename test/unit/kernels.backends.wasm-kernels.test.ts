// The wasm backend's Slice, Unpack, SplitV and Identity are replaced (kernels/backends/wasm-kernels.ts);
// each replacement must give what the plain-JavaScript cpu backend gives.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';

type Values = number[] | boolean[];

function valuesOf(shape: number[], dtype: 'float32' | 'int32' | 'bool'): Values {
  const n = shape.reduce((a, d) => a * d, 1);
  if (dtype === 'bool') return Array.from({ length: n }, (_, i) => (i * 7) % 3 === 0);
  return Array.from({ length: n }, (_, i) => (dtype === 'int32' ? i * 3 - 50 : i * 0.25 - 7));
}

/** Runs f on the cpu backend and on wasm; the results as nested arrays with their shapes. */
async function onBoth(f: () => tf.Tensor | tf.Tensor[]): Promise<{ cpu: unknown; wasm: unknown }> {
  const run = async (backend: 'cpu' | 'wasm') => {
    await selectBackend(backend);
    return tf.tidy(() => [f()].flat().map((t) => ({ shape: t.shape, dtype: t.dtype, values: t.arraySync() })));
  };
  return { cpu: await run('cpu'), wasm: await run('wasm') };
}

describe('wasm Slice, Unpack, SplitV and Identity replacements', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  const slices: [number[], number[], number[]][] = [
    [[10], [3], [4]],
    [[4, 6], [1, 0], [2, 6]], // whole rows: one run
    [[4, 6], [1, 2], [3, 3]], // part rows
    [[3, 4, 5], [1, 1, 0], [2, 2, 5]],
    [[3, 4, 5], [0, 0, 2], [3, 4, 2]],
    [[2, 3, 4, 5], [1, 0, 1, 1], [1, 3, 2, 3]],
    [[2, 2, 3, 2, 3], [0, 1, 1, 0, 1], [2, 1, 2, 2, 2]],
    [[4, 5], [2, 1], [0, 3]], // empty
  ];
  for (const dtype of ['float32', 'int32', 'bool'] as const) {
    for (const [shape, begin, size] of slices) {
      it(`slices [${shape}] at [${begin}] size [${size}] (${dtype}) as the cpu backend does`, async () => {
        const { cpu, wasm } = await onBoth(() => tf.slice(tf.tensor(valuesOf(shape, dtype), shape, dtype), begin, size));
        assert.deepEqual(wasm, cpu);
      });
    }
  }

  for (const [shape, axis] of [[[3, 4, 2], 0], [[3, 4, 2], 1], [[3, 4, 2], 2], [[5], 0], [[2, 3, 2, 2], -1]] as [number[], number][]) {
    it(`unstacks [${shape}] along axis ${axis} and splits it unevenly as the cpu backend does`, async () => {
      const parts = shape.at(axis)! > 1 ? [1, shape.at(axis)! - 1] : 1;
      const { cpu, wasm } = await onBoth(() => {
        const x = tf.tensor(valuesOf(shape, 'float32'), shape);
        return [...tf.unstack(x, axis), ...tf.split(x, parts, axis)];
      });
      assert.deepEqual(wasm, cpu);
    });
  }

  it('shares data in Identity and keeps it while any holder is alive', async () => {
    await selectBackend('wasm');
    const x = tf.tensor([1, 2, 3]);
    const y = tf.clone(x);
    const before = tf.memory().numBytes;
    x.dispose();
    assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3]);
    assert.equal(tf.memory().numBytes, before - 12, 'the disposed holder no longer counts');
    y.dispose();
  });

  it('leaves the gradients of slice, unstack and split unchanged', async () => {
    const { cpu, wasm } = await onBoth(() => {
      const x = tf.tensor(valuesOf([3, 4, 5], 'float32'), [3, 4, 5]);
      const w = tf.tensor(valuesOf([2, 2, 5], 'float32'), [2, 2, 5]);
      const loss = (t: tf.Tensor) =>
        tf.add(tf.add(tf.sum(tf.mul(tf.slice(t, [1, 1, 0], [2, 2, 5]), w)), tf.sum(tf.mul(tf.unstack(t)[2]!, 3))), tf.sum(tf.square(tf.split(t, [1, 3], 1)[1]!)));
      return tf.grad(loss)(x);
    });
    assert.deepEqual(wasm, cpu);
  });

  it('frees what it allocates', async () => {
    await selectBackend('wasm');
    const x = tf.tensor(valuesOf([6, 8, 4], 'float32'), [6, 8, 4]);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      tf.slice(x, [1, 2, 0], [3, 3, 4]);
      tf.unstack(x);
      tf.split(x, 2, 1);
      tf.clone(x);
    });
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
  });
});
