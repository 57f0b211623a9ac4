// Replacements for four tfjs-backend-wasm 4.22 kernels that copy more than they return.
//
// Its Slice reads its input with `readSync`, which copies the whole tensor out of the wasm heap,
// and then copies the requested part; Unpack and SplitV call that Slice once per output, so
// cutting a tensor into n pieces copies it n + 1 times (measured: 8 slices of a 4 MB tensor
// 16 ms, against 0.3 ms to add a scalar to it). Its Identity copies where a reference will do.
// These versions copy only the requested bytes, within the heap, and Identity shares the data
// as Reshape already does. Gradients are registered by kernel name, so they are unchanged.
//
// Its tensor allocation also takes a failed malloc (a heap that cannot grow past 4 GiB) for
// address 0, or gets an address past the heap's end from a size that wrapped around, and carries
// on: writing over the start of the heap, or failing later with an unrelated RangeError. Here
// both throw WasmHeapExhausted instead.
import * as tf from '@tensorflow/tfjs-core';
import { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type KernelArgs = Parameters<tf.KernelFunc>[0];

function wasmOf(args: KernelArgs): BackendWasm {
  return args.backend as BackendWasm;
}

/** The Emscripten module's current view of the heap (tfjs types the module without Emscripten's typings). */
export function heapOf(backend: BackendWasm): Uint8Array {
  return (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8;
}

/**
 * Copies x[begin … begin + size) into a new tensor, within the heap: one memmove per run of
 * elements that is contiguous in both x and the result.
 */
function sliceOf(backend: BackendWasm, x: tf.TensorInfo, begin: readonly number[], size: readonly number[]): tf.TensorInfo {
  const out = backend.makeOutput([...size], x.dtype);
  const count = size.reduce((n, d) => n * d, 1);
  if (count === 0) return out;
  const bytes = tf.util.bytesPerElement(x.dtype);
  // Read the heap after makeOutput: an allocation may grow the heap and replace its buffer.
  const heap = heapOf(backend);
  const from = backend.getMemoryOffset(x.dataId);
  const to = backend.getMemoryOffset(out.dataId);
  const rank = x.shape.length;
  const strides = tf.util.computeStrides(x.shape);
  const stride = (axis: number): number => (axis === rank - 1 ? 1 : strides[axis]!);
  // The innermost axes form one run while every axis inside them is taken whole.
  let inner = rank - 1;
  let run = size[inner]!;
  while (inner > 0 && size[inner] === x.shape[inner]) run *= size[--inner]!;
  const index = new Array<number>(inner).fill(0);
  for (let written = 0; written < count; written += run) {
    let source = begin[inner]! * stride(inner);
    for (let axis = 0; axis < inner; axis++) source += (begin[axis]! + index[axis]!) * stride(axis);
    heap.copyWithin(to + written * bytes, from + source * bytes, from + (source + run) * bytes);
    for (let axis = inner - 1; axis >= 0; axis--) {
      if (++index[axis]! < size[axis]!) break;
      index[axis] = 0;
    }
  }
  return out;
}

function slice(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs['x'] as tf.TensorInfo;
  const { begin, size } = args.attrs as unknown as tf.SliceAttrs;
  const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  return sliceOf(wasmOf(args), x, begin_, size_);
}

function unpack(args: KernelArgs): tf.TensorInfo[] {
  const value = args.inputs['value'] as tf.TensorInfo;
  const rank = value.shape.length;
  const axis = ((args.attrs as unknown as tf.UnpackAttrs).axis + rank) % rank;
  const size = value.shape.slice();
  size[axis] = 1;
  const outShape = value.shape.filter((_, i) => i !== axis);
  return Array.from({ length: value.shape[axis]! }, (_, i) => {
    const begin = value.shape.map((__, j) => (j === axis ? i : 0));
    return { ...sliceOf(wasmOf(args), value, begin, size), shape: outShape };
  });
}

function splitV(args: KernelArgs): tf.TensorInfo[] {
  const x = args.inputs['x'] as tf.TensorInfo;
  const { numOrSizeSplits, axis } = args.attrs as unknown as tf.SplitVAttrs;
  const $axis = tf.util.parseAxisParam(axis, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, $axis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = x.shape.slice();
    size[$axis] = s;
    const piece = sliceOf(wasmOf(args), x, begin, size);
    begin[$axis]! += s;
    return piece;
  });
}

function identity(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs['x'] as tf.TensorInfo;
  wasmOf(args).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

const REPLACEMENTS: Record<string, tf.KernelFunc> = { Slice: slice, Unpack: unpack, SplitV: splitV, Identity: identity };

/** The wasm heap could not hold another tensor (of `what` bytes, or as `what` says). */
export class WasmHeapExhausted extends Error {
  constructor(what: number | string) {
    super(typeof what === 'string' ? what : `the wasm backend's heap (at most 4 GiB) has no room for another ${(what / 2 ** 20).toFixed(0)} MiB tensor`);
    this.name = 'WasmHeapExhausted';
  }
}

function guardAllocations(): void {
  const move = BackendWasm.prototype.move;
  BackendWasm.prototype.move = function (this: BackendWasm, dataId, values, shape, dtype, refCount) {
    move.call(this, dataId, values, shape, dtype, refCount);
    const bytes = dtype === 'string' ? 0 : tf.util.sizeFromShape(shape) * tf.util.bytesPerElement(dtype);
    const placed = this.dataIdMap.get(dataId);
    if (placed && bytes > 0 && (placed.memoryOffset === 0 || placed.memoryOffset + bytes > heapOf(this).length)) {
      this.wasm.tfjs.disposeData(placed.id);
      this.dataIdMap.delete(dataId);
      throw new WasmHeapExhausted(bytes);
    }
  };
}

let installed = false;

/**
 * Puts the replacements in place of the wasm backend's own kernels (string tensors, which
 * live outside the heap, still go to the originals) and guards its allocations. Idempotent.
 */
export function installWasmKernels(): void {
  if (installed) return;
  for (const [kernelName, replacement] of Object.entries(REPLACEMENTS)) {
    const original = tf.getKernel(kernelName, 'wasm');
    if (!original) throw new Error(`tfjs-backend-wasm has no ${kernelName} kernel to replace; is it registered?`);
    const kernelFunc: tf.KernelFunc = (args) => {
      const inputs = Object.values(args.inputs) as tf.TensorInfo[];
      return inputs.some((t) => t.dtype === 'string') ? original.kernelFunc(args) : replacement(args);
    };
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ ...original, kernelFunc });
  }
  guardAllocations();
  installed = true;
}

/** True for the wasm module's own abort: after it, every call into the module throws again. */
export function isWasmAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'RuntimeError' && /^Aborted\(/.test(error.message);
}

/** True when the wasm heap ran out: a tensor it could not place, or the module's abort when an allocation inside it fails. */
export function isWasmHeapExhausted(error: unknown): boolean {
  return error instanceof WasmHeapExhausted || isWasmAbort(error);
}
