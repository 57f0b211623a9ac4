// The native weight store's products and gather (kernels/base/native-weights.ts), on MLAS: value
// and input gradient at each precision against float64 on the dequantised W, float32 as the heap's
// product gives it, the output written where tfjs allocated it, on the wasm and cpu backends.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../../kernels/backends/backend';
import { mlasProductCount } from '../../kernels/backends/mlas-matmul';
import { BLOCK_BYTES, backwardSplit, blockRows, nativeGather, nativeInputGradient, nativeLinear, setBlockBytes } from '../../kernels/base/native-weights';
import { BASE_PRECISIONS, PackedMatrix, type BaseFormat, type BasePrecision } from '../../kernels/base/quant';
import { heapOf } from '../../kernels/backends/wasm-kernels';
import { product64, relativeError, seeded } from '../helpers/tensors';

/** A [rows, cols] matrix of seeded values in [−1, 1), stored at `format`, and deq(W) read back. */
function packed(rows: number, cols: number, format: BaseFormat, seed: number): { matrix: PackedMatrix; deq: Float32Array } {
  const values = seeded([rows, cols], seed).dataSync() as Float32Array;
  const matrix = PackedMatrix.allocate(rows, cols, format);
  matrix.write(values, 0, rows);
  const deq = new Float32Array(rows * cols);
  matrix.readRows(0, rows, deq);
  return { matrix, deq };
}


const format = (precision: BasePrecision, groupSize = 16): BaseFormat => ({ precision, groupSize });

describe("the native weight store's products", () => {
  before(async () => {
    await selectBackend('wasm');
  });
  after(() => setBlockBytes(BLOCK_BYTES));

  // [x's shape, d_out]: a 2-D x, batch dimensions, d_in not a multiple of the group (16), an odd d_in
  const cases: [number[], number][] = [
    [[5, 32], 11],
    [[2, 3, 40], 7],
    [[4, 37], 19],
  ];
  for (const precision of BASE_PRECISIONS) {
    for (const [xShape, dOut] of cases) {
      const dIn = xShape[xShape.length - 1]!;
      const m = xShape.slice(0, -1).reduce((a, b) => a * b, 1);
      for (const blocks of [1, 3]) {
        it(`${precision}: x [${xShape}] · W [${dOut}, ${dIn}]ᵀ in ${blocks} block(s): value and input gradient against float64 on deq(W)`, () => {
          const { matrix, deq } = packed(dOut, dIn, format(precision), 7);
          setBlockBytes(blocks === 1 ? BLOCK_BYTES : 4 * dIn * Math.ceil(dOut / blocks));
          assert.equal(Math.ceil(dOut / blockRows(matrix)), blocks, 'blocks of rows');
          const x = seeded(xShape, 8);
          const before = mlasProductCount();
          const y = nativeLinear(x, matrix);
          assert.equal(mlasProductCount() - before, blocks, 'products on MLAS');
          assert.deepEqual(y.shape, [...xShape.slice(0, -1), dOut]);
          const expected = product64(x.dataSync(), deq, m, dIn, dOut, true);
          assert.ok(relativeError(y.dataSync(), expected) < 1e-6, `value: relative difference ${relativeError(y.dataSync(), expected)}`);
          // d/dx Σ y ⊙ r = r · deq(W)
          const r = seeded(y.shape, 9);
          const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(nativeLinear(input, matrix), r)))(x);
          assert.deepEqual(dx.shape, xShape);
          const expectedDx = product64(r.dataSync(), deq, m, dOut, dIn, false);
          assert.ok(relativeError(dx.dataSync(), expectedDx) < 1e-6, `gradient: relative difference ${relativeError(dx.dataSync(), expectedDx)}`);
          setBlockBytes(BLOCK_BYTES);
        });
      }
    }
  }

  // W [d_out, d_in] in 3 blocks of rows, and what the input gradient splits by (fewest values moved):
  // columns of W [40, 200] 70 at a time, or 64 (whole groups of 16)
  const splits: [number, number, 'rows' | 'columns', (grouped: boolean) => number][] = [
    [40, 200, 'columns', (grouped) => (grouped ? 4 : 3)],
    [200, 40, 'rows', () => 3],
  ];
  for (const precision of BASE_PRECISIONS) {
    for (const [dOut, dIn, by, blocksOf] of splits) {
      const blocks = blocksOf(['int8', 'int4', 'nf4'].includes(precision));
      it(`${precision}: the input gradient through W [${dOut}, ${dIn}] split by ${by}, against float64 on deq(W)`, () => {
        const { matrix, deq } = packed(dOut, dIn, format(precision), 21);
        setBlockBytes(4 * dIn * Math.ceil(dOut / 3));
        try {
          const m = 4;
          assert.deepEqual(({ by: backwardSplit(matrix, m).by, blocks: backwardSplit(matrix, m).blocks }), { by, blocks });
          const dy = seeded([m, dOut], 22) as tf.Tensor2D;
          const before = mlasProductCount();
          const dx = nativeInputGradient(dy, matrix);
          assert.equal(mlasProductCount() - before, blocks, 'products on MLAS');
          const expected = product64(dy.dataSync(), deq, m, dOut, dIn, false);
          assert.ok(relativeError(dx.dataSync(), expected) < 1e-6, `relative difference ${relativeError(dx.dataSync(), expected)}`);
        } finally {
          setBlockBytes(BLOCK_BYTES);
        }
      });
    }
  }

  it("float32: the same values as today's product with W in the heap, forward and backward", () => {
    const [dOut, dIn] = [48, 40];
    const { matrix, deq } = packed(dOut, dIn, format('float32'), 3);
    const w = tf.tensor2d(deq, [dOut, dIn]);
    const inOut = tf.transpose(w); // how CausalLM holds every linear weight today
    const x = seeded([2, 6, dIn], 4);
    const r = seeded([2, 6, dOut], 5);
    const ours = tf.grads((input: tf.Tensor) => tf.sum(tf.mul(nativeLinear(input, matrix), r)));
    const today = tf.grads((input: tf.Tensor) => tf.sum(tf.mul(tf.reshape(tf.matMul(tf.reshape(input, [-1, dIn]), inOut), [2, 6, dOut]), r)));
    assert.ok(relativeError(nativeLinear(x, matrix).dataSync(), tf.matMul(tf.reshape(x, [-1, dIn]), inOut).dataSync()) < 1e-6, 'forward');
    assert.ok(relativeError(ours([x])[0]!.dataSync(), today([x])[0]!.dataSync()) < 1e-6, 'input gradient');
  });

  it('write their output in the heap where tfjs allocated it, when allocating it grows the heap', () => {
    const backend = tf.backend() as BackendWasm;
    const heapBefore = heapOf(backend).buffer.byteLength;
    const dIn = 8;
    const dOut = 4096;
    const rows = Math.ceil(heapBefore / 4 / dOut) + 64;
    const { matrix, deq } = packed(dOut, dIn, format('int8'), 6);
    const x = seeded([rows, dIn], 7);
    const y = nativeLinear(x, matrix);
    assert.ok(heapOf(backend).buffer.byteLength > heapBefore, 'the heap grew');
    const last = tf.slice(y, [rows - 2, 0], [2, dOut]).dataSync();
    const expected = product64(tf.slice(x, [rows - 2, 0], [2, dIn]).dataSync(), deq, 2, dIn, dOut, true);
    assert.ok(relativeError(last, expected) < 1e-6, 'the last rows, recomputed');
    tf.dispose([x, y]);
  });

  it('refuse an x whose last dimension is not d_in', () => {
    const { matrix } = packed(4, 32, format('int4'), 1);
    assert.throws(() => nativeLinear(seeded([3, 31], 2), matrix), /shape \[3, 31\] does not end in the weight's d_in = 32/);
  });

  it('run on the cpu backend too: the same values and gradient as on wasm', async () => {
    const { matrix } = packed(9, 40, format('nf4'), 12);
    const x = seeded([3, 40], 13);
    const r = seeded([3, 9], 14);
    const run = () => {
      const [dx] = tf.grads((input: tf.Tensor) => tf.sum(tf.mul(nativeLinear(input, matrix), r)))([x]);
      return { y: nativeLinear(x, matrix).dataSync(), dx: dx!.dataSync(), rows: nativeGather(matrix, tf.tensor1d([8, 2], 'int32')).dataSync() };
    };
    const onWasm = run();
    await tf.setBackend('cpu');
    try {
      const onCpu = tf.tidy(() => {
        const [xc, rc] = [tf.tensor(x.dataSync(), x.shape), tf.tensor(r.dataSync(), r.shape)];
        const [dx] = tf.grads((input: tf.Tensor) => tf.sum(tf.mul(nativeLinear(input, matrix), rc)))([xc]);
        return { y: nativeLinear(xc, matrix).dataSync(), dx: dx!.dataSync(), rows: nativeGather(matrix, tf.tensor1d([8, 2], 'int32')).dataSync() };
      });
      assert.ok(relativeError(onCpu.y, onWasm.y) < 1e-6, 'value');
      assert.ok(relativeError(onCpu.dx, onWasm.dx) < 1e-6, 'gradient');
      assert.deepEqual(onCpu.rows, onWasm.rows);
    } finally {
      await tf.setBackend('wasm');
    }
  });

  for (const precision of BASE_PRECISIONS) {
    it(`${precision}: gather the rows of deq(W) an embedding's ids name`, () => {
      const { matrix, deq } = packed(50, 37, format(precision), 11);
      const ids = tf.tensor2d([[3, 0, 49], [7, 7, 12]], [2, 3], 'int32');
      const rows = nativeGather(matrix, ids);
      assert.deepEqual(rows.shape, [2, 3, 37]);
      const expected = [3, 0, 49, 7, 7, 12].flatMap((id) => [...deq.subarray(id * 37, (id + 1) * 37)]);
      assert.deepEqual([...rows.dataSync()], expected);
      assert.throws(() => nativeGather(matrix, tf.tensor1d([50], 'int32')), /token id 50 \(position 0\) is outside the embedding table's 50 rows/);
    });
  }
});
