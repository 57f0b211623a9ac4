// Run by test/integration/webgpu-quant.test.ts in a process of its own (on SwiftShader): the frozen
// base's product on packed weights (kernels/base/webgpu-quant.ts), its value and input gradient
// against float64 products on deq(W) (PackedMatrix.readRows), the weights in as many row chunks as
// the case asks; with `identity`, x = I, so y = deq(W)ᵀ bit for bit; with `unchunked`, the same
// product in one chunk beside it; with `gather`, those rows of deq(W) gathered (quantGather), bit
// for bit, and an id past the table refused.
import * as tf from '@tensorflow/tfjs-core';
import { PackedMatrix, type BaseFormat } from '../../../kernels/base/quant';
import { QUANT_PRODUCT, quantGather, quantLinear, uploadPacked } from '../../../kernels/base/webgpu-quant';
import { rowCodeBytes } from '../../../kernels/base/webgpu-plan';
import { product64, relativeError, seeded } from '../tensors';
import { runCases } from '../webgpu-start';

export interface Case {
  name: string;
  format: BaseFormat;
  /** x's shape, ending in d_in. */
  x: number[];
  dOut: number;
  /** Row chunks W is uploaded in. */
  chunks: number;
  /** x = I [d_in, d_in]: y must be deq(W)ᵀ exactly. */
  identity?: boolean;
  /** Values written into W before packing, at these flat positions (float16's subnormals and extremes). */
  specials?: [index: number, value: number][];
  /** Also run the product in one chunk and compare. */
  unchunked?: boolean;
  /** Rows of W to gather, as ids [2, n / 2]. */
  gather?: number[];
}

export interface Result {
  name: string;
  chunks: number;
  /** Dispatches of the quantised kernel, forward and backward. */
  kernels: number;
  /** Relative errors of y and dx against float64 on deq(W). */
  errors: [number, number];
  /** Elements of y that differ from deq(W)ᵀ (identity cases), else null. */
  mismatches: number | null;
  /** One chunk against the case's: y's largest difference and dx's relative error (unchunked cases). */
  chunking: { y: number; dx: number } | null;
  /** Gathered elements that differ from deq(W)'s rows, and the error an id past the table gave (gather cases). */
  gather: { mismatches: number; shape: number[]; refusal: string } | null;
}


/** Buffer limits that hold W in `chunks` chunks of rows. */
function limitsFor(matrix: PackedMatrix, chunks: number) {
  const perRow = Math.max(rowCodeBytes(matrix.cols, matrix.format), matrix.scales ? 4 * matrix.groups : 0);
  const bytes = Math.ceil((Math.ceil(matrix.rows / chunks) * perRow) / 4) * 4;
  return { maxStorageBufferBindingSize: bytes, maxBufferSize: bytes };
}

/** y and dx = d/dx Σ y ⊙ r on the GPU for W uploaded in `chunks` chunks, and the quantised kernel's runs. */
async function run(matrix: PackedMatrix, chunks: number, x: tf.Tensor, r: tf.Tensor) {
  const packed = uploadPacked(matrix, limitsFor(matrix, chunks));
  let values: [number[], number[]] = [[], []];
  const profile = await tf.profile(async () => {
    const y = quantLinear(x, packed);
    const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(quantLinear(input, packed), r)))(x);
    values = [Array.from(await y.data()), Array.from(await dx.data())];
    tf.dispose([y, dx]);
  });
  packed.dispose();
  return { values, chunks: packed.chunks.length, kernels: profile.kernels.filter((k) => k.name === QUANT_PRODUCT).length };
}

/** The rows `ids` of deq(W) gathered from W in `chunks` chunks, compared with deq's rows; and an id past the table. */
async function gatherRows(matrix: PackedMatrix, chunks: number, ids: number[], deq: Float32Array): Promise<Result['gather']> {
  const packed = uploadPacked(matrix, limitsFor(matrix, chunks));
  const idTensor = tf.tensor2d(ids, [2, ids.length / 2], 'int32');
  const out = await quantGather(packed, idTensor);
  const values = await out.data();
  let mismatches = 0;
  ids.forEach((id, t) => {
    for (let j = 0; j < matrix.cols; j++) if (values[t * matrix.cols + j] !== deq[id * matrix.cols + j]) mismatches++;
  });
  const refusal = await quantGather(packed, tf.tensor1d([0, matrix.rows], 'int32')).then(
    () => '',
    (error: Error) => error.message,
  );
  const shape = out.shape;
  tf.dispose([idTensor, out]);
  packed.dispose();
  return { mismatches, shape, refusal };
}

runCases<Case, Result>(async (cases) => {
  const results: Result[] = [];
  for (const c of cases) {
    const dIn = c.x[c.x.length - 1]!;
    const m = c.x.slice(0, -1).reduce((a, b) => a * b, 1);
    const w = (await seeded([c.dOut, dIn], 11).data()) as Float32Array;
    for (const [i, v] of c.specials ?? []) w[i] = v;
    const matrix = PackedMatrix.allocate(c.dOut, dIn, c.format);
    matrix.write(w, 0, c.dOut);
    const deq = new Float32Array(c.dOut * dIn);
    matrix.readRows(0, c.dOut, deq);
    const x = c.identity ? tf.eye(dIn) : seeded(c.x, 12);
    const r = seeded([...x.shape.slice(0, -1), c.dOut], 13);
    const xs = await x.data();
    const got = await run(matrix, c.chunks, x, r);
    if (got.chunks !== c.chunks) throw new Error(`${c.name}: uploaded in ${got.chunks} chunks, not ${c.chunks}`);
    const [y, dx] = got.values;
    const expectedY = product64(xs, deq, m, dIn, c.dOut, true);
    const expectedDx = product64(await r.data(), deq, m, c.dOut, dIn, false);
    let mismatches: number | null = null;
    if (c.identity) {
      mismatches = 0;
      for (let i = 0; i < dIn; i++) for (let o = 0; o < c.dOut; o++) if (y[i * c.dOut + o] !== deq[o * dIn + i]) mismatches++;
    }
    let chunking: Result['chunking'] = null;
    if (c.unchunked) {
      const one = await run(matrix, 1, x, r);
      chunking = { y: Math.max(...one.values[0].map((v, i) => Math.abs(v - y[i]!))), dx: relativeError(dx, one.values[1]) };
    }
    const gather = c.gather ? await gatherRows(matrix, c.chunks, c.gather, deq) : null;
    results.push({ name: c.name, chunks: got.chunks, kernels: got.kernels, errors: [relativeError(y, expectedY), relativeError(dx, expectedDx)], mismatches, chunking, gather });
    tf.dispose([x, r]);
  }
  return results;
});
