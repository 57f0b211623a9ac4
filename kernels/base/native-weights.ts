// The frozen base of the linear layers outside the wasm heap: each weight W [d_out, d_in] a
// PackedMatrix (kernels/quant.ts) in native memory at its stored precision, and the two products
// a frozen layer needs, on onnxruntime's MLAS (kernels/mlas-matmul.ts):
//
//   forward         Y [M, d_out] = X [M, d_in] · deq(W)ᵀ
//   input gradient  dX [M, d_in] = dY [M, d_out] · deq(W)       (no weight gradient: W is frozen)
//
// and the gather of a frozen embedding table's rows (a tied lm_head's W serves both).
//
// A product dequantises W a block at a time into a float32 scratch array of this thread
// (BLOCK_BYTES, or one group's width of columns where that is more) and multiplies by the block
// there: onnxruntime's binding takes neither a SharedArrayBuffer (where the store lives, to be
// shared by threads) nor the 4-bit types, and dequantising inside its graph makes a float32 copy
// of the whole W per call (an lm_head's 0.9 GB for Qwen2.5-1.5B). Forward and backward read the
// same stored codes, so the input's gradient flows through exactly the weight the forward used.
// The input comes from, and the output goes to, the wasm heap where tfjs allocated them, as views
// (no copy), on the `wasm` backend; on `cpu` through its arrays.
import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { mlasProductInto } from '../backends/mlas-matmul';
import { isGrouped, type PackedMatrix } from './quant';
import { heapOf } from '../backends/wasm-kernels';

export const NATIVE_PRODUCT = 'MosloraNativeProduct';
export const NATIVE_GATHER = 'MosloraNativeGather';

/** The backends the native products run on. */
export const NATIVE_BACKENDS = ['wasm', 'cpu'] as const;

/** At most this many bytes of W are dequantised at once (a block of whole rows or whole groups of columns), unless setBlockBytes says otherwise. */
export const BLOCK_BYTES = 16 * 1024 ** 2;
let blockBytes = BLOCK_BYTES;

/** Bytes of W a product dequantises at once from now on (tests and the benchmark vary it). */
export function setBlockBytes(bytes: number): void {
  if (!Number.isSafeInteger(bytes) || bytes < 4) throw new RangeError(`block bytes must be an integer of at least 4, got ${bytes}`);
  blockBytes = bytes;
}

/** Rows of W dequantised per block. */
export function blockRows(matrix: PackedMatrix): number {
  return Math.max(1, Math.min(matrix.rows, Math.floor(blockBytes / (4 * matrix.cols))));
}

// This thread's scratch arrays, grown when a product needs more and kept for the next one.
const scratch = new Map<'weights' | 'out' | 'gradient', Float32Array>();

function scratchOf(name: 'weights' | 'out' | 'gradient', length: number): Float32Array {
  let found = scratch.get(name);
  if (!found || found.length < length) {
    found = new Float32Array(length);
    scratch.set(name, found);
  }
  return found.subarray(0, length);
}

/** Bytes of scratch arrays this thread holds for native products. */
export function nativeScratchBytes(): number {
  return [...scratch.values()].reduce((sum, a) => sum + a.byteLength, 0);
}

/** y [m, rows] = x [m, cols] · deq(W)ᵀ. */
export function forwardProduct(matrix: PackedMatrix, x: Float32Array, y: Float32Array, m: number): void {
  const { rows: n, cols: k } = matrix;
  const per = blockRows(matrix);
  for (let r0 = 0; r0 < n; r0 += per) {
    const nb = Math.min(per, n - r0);
    const w = scratchOf('weights', nb * k);
    matrix.readRows(r0, nb, w);
    if (nb === n) {
      mlasProductInto({ data: x, shape: [m, k] }, { data: w, shape: [n, k] }, { data: y, shape: [m, n] }, false, true);
      return;
    }
    // the block's columns of y, computed together and put in place row by row
    const block = scratchOf('out', m * nb);
    mlasProductInto({ data: x, shape: [m, k] }, { data: w, shape: [nb, k] }, { data: block, shape: [m, nb] }, false, true);
    for (let i = 0; i < m; i++) y.set(block.subarray(i * nb, (i + 1) * nb), i * n + r0);
  }
}

/**
 * How dx = dy · deq(W) splits W that does not fit one block: by blocks of rows, each a share of
 * dx, summed (moving dy's columns of the block and a sum of dx per block), or by blocks of columns
 * (whole groups), each a block of dx's columns (reading dy once per block): whichever moves fewer
 * values. An lm_head (many rows) splits by rows, a down_proj (many columns) by columns.
 */
export function backwardSplit(matrix: PackedMatrix, m: number): { by: 'rows' | 'columns'; size: number; blocks: number } {
  const { rows: n, cols: k } = matrix;
  const rowsPer = blockRows(matrix);
  const byRows = { by: 'rows' as const, size: rowsPer, blocks: Math.ceil(n / rowsPer) };
  if (byRows.blocks === 1) return byRows;
  const unit = isGrouped(matrix.format.precision) ? matrix.format.groupSize : 1;
  const colsPer = Math.min(k, Math.max(unit, Math.floor(blockBytes / (4 * n) / unit) * unit));
  const byColumns = { by: 'columns' as const, size: colsPer, blocks: Math.ceil(k / colsPer) };
  const rowsMoved = (byRows.blocks - 1) * m * k + m * n;
  const columnsMoved = (byColumns.blocks - 1) * m * n + m * k;
  return columnsMoved < rowsMoved ? byColumns : byRows;
}

/** dx [m, cols] = dy [m, rows] · deq(W), a block of W at a time (backwardSplit). */
export function backwardProduct(matrix: PackedMatrix, dy: Float32Array, dx: Float32Array, m: number): void {
  const { rows: n, cols: k } = matrix;
  const split = backwardSplit(matrix, m);
  if (split.by === 'columns') {
    for (let c0 = 0; c0 < k; c0 += split.size) {
      const kb = Math.min(split.size, k - c0);
      const w = scratchOf('weights', n * kb);
      matrix.readBlock(0, n, c0, kb, w);
      const block = scratchOf('out', m * kb);
      mlasProductInto({ data: dy, shape: [m, n] }, { data: w, shape: [n, kb] }, { data: block, shape: [m, kb] }, false, false);
      for (let i = 0; i < m; i++) dx.set(block.subarray(i * kb, (i + 1) * kb), i * k + c0);
    }
    return;
  }
  for (let r0 = 0; r0 < n; r0 += split.size) {
    const nb = Math.min(split.size, n - r0);
    const w = scratchOf('weights', nb * k);
    matrix.readRows(r0, nb, w);
    if (nb === n) {
      mlasProductInto({ data: dy, shape: [m, n] }, { data: w, shape: [n, k] }, { data: dx, shape: [m, k] }, false, false);
      return;
    }
    const g = scratchOf('gradient', m * nb);
    for (let i = 0; i < m; i++) g.set(dy.subarray(i * n + r0, i * n + r0 + nb), i * nb);
    if (r0 === 0) {
      mlasProductInto({ data: g, shape: [m, nb] }, { data: w, shape: [nb, k] }, { data: dx, shape: [m, k] }, false, false);
    } else {
      const share = scratchOf('out', m * k);
      mlasProductInto({ data: g, shape: [m, nb] }, { data: w, shape: [nb, k] }, { data: share, shape: [m, k] }, false, false);
      for (let i = 0; i < m * k; i++) dx[i]! += share[i]!;
    }
  }
}

/** out [ids.length, cols] = the rows ids of deq(W). */
export function gatherRows(matrix: PackedMatrix, ids: Int32Array, out: Float32Array): void {
  const k = matrix.cols;
  ids.forEach((id, i) => {
    if (!(id >= 0 && id < matrix.rows)) throw new RangeError(`token id ${id} (position ${i}) is outside the embedding table's ${matrix.rows} rows`);
    matrix.readRows(id, 1, out.subarray(i * k, (i + 1) * k));
  });
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

interface ProductAttrs {
  matrix: PackedMatrix;
  /** dy · deq(W) (the input's gradient) instead of x · deq(W)ᵀ. */
  transpose: boolean;
}

/** An input's values and an output to write, on the kernel's backend: views of the wasm heap, or the cpu backend's arrays. */
function onBackend<T extends Float32Array | Int32Array>(args: KernelArgs, input: tf.TensorInfo, outShape: number[], write: (values: T, out: Float32Array) => void): tf.TensorInfo {
  const size = tf.util.sizeFromShape(outShape);
  if (tf.getBackend() === 'wasm') {
    const backend = args.backend as BackendWasm;
    const out = backend.makeOutput(outShape, 'float32');
    if (size === 0) return out;
    // Views taken after makeOutput: an allocation may grow the heap and replace its buffer.
    const heap = heapOf(backend).buffer;
    const [offset, length] = [backend.getMemoryOffset(input.dataId), tf.util.sizeFromShape(input.shape)];
    const values = (input.dtype === 'int32' ? new Int32Array(heap, offset, length) : new Float32Array(heap, offset, length)) as T;
    write(values, new Float32Array(heap, backend.getMemoryOffset(out.dataId), size));
    return out;
  }
  const backend = args.backend as MathBackendCPU;
  const out = new Float32Array(size);
  if (size > 0) write(backend.readSync(input.dataId) as T, out);
  return backend.makeTensorInfo(outShape, 'float32', out);
}

function productKernel(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs['x'] as tf.TensorInfo;
  const { matrix, transpose } = args.attrs as unknown as ProductAttrs;
  const [m, inner] = x.shape as [number, number];
  const [expected, width] = transpose ? [matrix.rows, matrix.cols] : [matrix.cols, matrix.rows];
  if (x.shape.length !== 2 || inner !== expected || x.dtype !== 'float32') {
    throw new Error(`${NATIVE_PRODUCT}: expected float32 [M, ${expected}], got ${x.dtype} [${x.shape.join(', ')}]`);
  }
  return onBackend<Float32Array>(args, x, [m, width], (values, out) =>
    (transpose ? backwardProduct : forwardProduct)(matrix, values, out, m));
}

function gatherKernel(args: KernelArgs): tf.TensorInfo {
  const ids = args.inputs['ids'] as tf.TensorInfo;
  const { matrix } = args.attrs as unknown as { matrix: PackedMatrix };
  if (ids.dtype !== 'int32') throw new Error(`${NATIVE_GATHER}: ids must be int32, got ${ids.dtype}`);
  return onBackend<Int32Array>(args, ids, [...ids.shape, matrix.cols], (values, out) => gatherRows(matrix, values, out));
}

function ensureKernels(): void {
  const backend = tf.getBackend();
  if (!(NATIVE_BACKENDS as readonly string[]).includes(backend)) {
    throw new Error(`the native weight store's products run on ${NATIVE_BACKENDS.join(' and ')}, not on ${backend}`);
  }
  if (!tf.getKernel(NATIVE_PRODUCT, backend)) {
    tf.registerKernel({ kernelName: NATIVE_PRODUCT, backendName: backend, kernelFunc: productKernel });
    tf.registerKernel({ kernelName: NATIVE_GATHER, backendName: backend, kernelFunc: gatherKernel });
  }
}

function runProduct(x: tf.Tensor2D, matrix: PackedMatrix, transpose: boolean): tf.Tensor2D {
  const attrs: ProductAttrs = { matrix, transpose };
  return tf.engine().runKernel(NATIVE_PRODUCT, { x }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/**
 * x · deq(W)ᵀ for x [..., cols] → [..., rows]: a frozen linear layer without its bias. The
 * gradient flows to x only, dy · deq(W).
 */
export function nativeLinear<R extends tf.Rank>(x: tf.Tensor<R>, matrix: PackedMatrix): tf.Tensor<R> {
  ensureKernels();
  const inner = x.shape[x.rank - 1];
  if (x.rank < 2 || inner !== matrix.cols) {
    throw new Error(`x: shape [${x.shape.join(', ')}] does not end in the weight's d_in = ${matrix.cols}`);
  }
  const outShape = [...x.shape.slice(0, -1), matrix.rows];
  const product = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([]);
    return {
      value: tf.tidy(() => tf.reshape(runProduct(tf.reshape(input, [-1, matrix.cols]), matrix, false), outShape)),
      gradFunc: (dy: tf.Tensor) => [tf.tidy(() => tf.reshape(nativeInputGradient(tf.reshape(dy, [-1, matrix.rows]), matrix), input.shape))],
    };
  });
  return product(x) as tf.Tensor<R>;
}

/** dy [M, rows] · deq(W) → [M, cols]: nativeLinear's input gradient, alone. */
export function nativeInputGradient(dy: tf.Tensor2D, matrix: PackedMatrix): tf.Tensor2D {
  ensureKernels();
  return runProduct(dy, matrix, true);
}

/** The rows ids of deq(W): int32 ids [...] → [..., cols]; a frozen table, so no gradient. */
export function nativeGather(matrix: PackedMatrix, ids: tf.Tensor): tf.Tensor {
  ensureKernels();
  return tf.engine().runKernel(NATIVE_GATHER, { ids }, { matrix } as unknown as tf.NamedAttrMap) as tf.Tensor;
}
