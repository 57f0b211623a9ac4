// The wasm backend's products on onnxruntime's MLAS (kernels/backends/mlas-matmul.ts): values
// against a float64 product, gradients against XNNPACK's, the heap growing under them, and XNNPACK
// where onnxruntime-node is missing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../../kernels/backends/backend';
import { mlasProductCount, productEngine, useProductEngine, type ProductEngine } from '../../kernels/backends/mlas-matmul';
import { heapOf } from '../../kernels/backends/wasm-kernels';
import { relativeError, seeded } from '../helpers/tensors';

/** Runs f with the wasm backend's products on `engine`, then puts MLAS back. */
function on<T>(engine: ProductEngine, f: () => T): T {
  useProductEngine(engine);
  try {
    return f();
  } finally {
    useProductEngine('mlas');
  }
}

/** op(a)·op(b) in float64, batch dimensions broadcast as numpy does: the reference. */
function product64(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): { shape: number[]; values: Float64Array } {
  const [A, B] = [a.dataSync(), b.dataSync()];
  const rank = Math.max(a.rank, b.rank);
  const batchOf = (t: tf.Tensor) => [...new Array<number>(rank - t.rank).fill(1), ...t.shape.slice(0, -2)];
  const [ba, bb] = [batchOf(a), batchOf(b)];
  const batch = ba.map((d, i) => Math.max(d, bb[i]!));
  const [m, k] = ta ? [a.shape[a.rank - 1]!, a.shape[a.rank - 2]!] : [a.shape[a.rank - 2]!, a.shape[a.rank - 1]!];
  const n = tb ? b.shape[b.rank - 2]! : b.shape[b.rank - 1]!;
  const count = batch.reduce((x, d) => x * d, 1);
  const values = new Float64Array(count * m * n);
  const offset = (index: number[], dims: number[]) => index.reduce((o, v, i) => o * dims[i]! + (dims[i] === 1 ? 0 : v), 0);
  for (let flat = 0; flat < count; flat++) {
    const index = batch.map((_, i) => Math.floor(flat / batch.slice(i + 1).reduce((x, d) => x * d, 1)) % batch[i]!);
    const [oa, ob] = [offset(index, ba) * m * k, offset(index, bb) * k * n];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) sum += A[oa + (ta ? p * m + i : i * k + p)]! * B[ob + (tb ? j * k + p : p * n + j)]!;
        values[(flat * m + i) * n + j] = sum;
      }
    }
  }
  return { shape: [...batch, m, n], values };
}

/** Largest |a − b| over the largest |b|. */
function relative(a: tf.Tensor, b: tf.Tensor): number {
  return relativeError(a.dataSync(), b.dataSync());
}

describe("the wasm backend's products on onnxruntime's MLAS", () => {
  let device = '';
  before(async () => {
    device = (await selectBackend('wasm')).device;
  });

  it('are what wasm multiplies with, and the backend says so', () => {
    assert.equal(productEngine(), 'mlas', device);
    assert.match(device, /products on onnxruntime's MLAS/);
  });

  // flags, batches, broadcast batches, a 2-D right operand under a batch, a vocabulary-wide product
  const cases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [7, 3], true, false],
    [[7, 5], [3, 7], true, true],
    [[4, 5, 7], [4, 7, 3], false, false],
    [[2, 3, 7, 5], [2, 3, 64, 7], true, true],
    [[2, 1, 5, 7], [1, 3, 7, 4], false, false],
    [[3, 5, 7], [7, 4], false, false],
    [[16, 64], [64, 9000], false, false],
  ];
  for (const [sa, sb, ta, tb] of cases) {
    const name = `[${sa}]${ta ? 'ᵀ' : ''} · [${sb}]${tb ? 'ᵀ' : ''}`;
    it(`${name}: one MLAS product, the float64 value and shape`, () => {
      const a = seeded(sa, 1);
      const b = seeded(sb, 2);
      const before = mlasProductCount();
      const ours = tf.matMul(a, b, ta, tb);
      assert.equal(mlasProductCount() - before, 1, 'products computed by MLAS');
      const reference = product64(a, b, ta, tb);
      assert.deepEqual(ours.shape, reference.shape);
      const error = relativeError(ours.dataSync(), reference.values);
      assert.ok(error < 1e-6, `relative difference ${error}`);
    });
  }

  // tfjs's gradient of a product does not sum over broadcast batch dimensions (on any backend): the cases without them
  for (const [sa, sb, ta, tb] of cases.filter(([sa, sb]) => sa.length === sb.length && sa.slice(0, -2).join() === sb.slice(0, -2).join())) {
    it(`[${sa}]${ta ? 'ᵀ' : ''} · [${sb}]${tb ? 'ᵀ' : ''}: gradients equal XNNPACK's`, () => {
      const a = seeded(sa, 3);
      const b = seeded(sb, 4);
      const weights = seeded(tf.matMul(a, b, ta, tb).shape, 5);
      const gradients = () => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, ta, tb), weights)))([a, b]);
      const [ga, gb] = gradients();
      const [ra, rb] = on('xnnpack', gradients);
      assert.ok(relative(ga!, ra!) < 1e-6, 'd/da');
      assert.ok(relative(gb!, rb!) < 1e-6, 'd/db');
    });
  }

  it('write their output where it is, when allocating it grows the heap', () => {
    const backend = tf.backend() as BackendWasm;
    const heapBefore = heapOf(backend).buffer.byteLength;
    // an output larger than the whole heap was: allocating it must grow the heap
    const columns = 4096;
    const rows = Math.ceil(heapBefore / 4 / columns) + 64;
    const a = seeded([rows, 8], 6);
    const b = seeded([8, columns], 7);
    const product = tf.matMul(a, b);
    assert.ok(heapOf(backend).buffer.byteLength > heapBefore, 'the heap grew');
    const last = tf.slice(product, [rows - 2, 0], [2, columns]);
    const expected = tf.matMul(tf.slice(a, [rows - 2, 0], [2, 8]), b);
    assert.ok(relative(last, expected) < 1e-6, 'the last rows, recomputed alone');
    tf.dispose([a, b, product, last, expected]);
  });

  it('leave a product with an empty operand to XNNPACK', () => {
    const before = mlasProductCount();
    const empty = tf.matMul(tf.zeros([0, 3]), tf.ones([3, 4]));
    assert.deepEqual(empty.shape, [0, 4]);
    assert.equal(mlasProductCount(), before);
  });

  it('stay on XNNPACK, and say why, where onnxruntime-node is not installed (the built CLI, moved away from node_modules)', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'moslora-no-ort-'));
    try {
      await cp('dist', join(scratch, 'dist'), { recursive: true });
      const { stdout } = await promisify(execFile)(process.execPath, [join(scratch, 'dist', 'cli.js'), 'backends']);
      assert.match(stdout, /^backend: wasm — CPU \(WebAssembly, SIMD; products on XNNPACK: onnxruntime-node is not installed\)$/m);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
