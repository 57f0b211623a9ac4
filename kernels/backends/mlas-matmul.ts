// Products on the wasm backend through onnxruntime's MLAS.
//
// tfjs-backend-wasm multiplies with XNNPACK compiled to WebAssembly: 128-bit SIMD without fused
// multiply-add, one thread, and the products are most of a training step there. onnxruntime-node
// ships MLAS, onnxruntime's native GEMM for AVX2 / AVX-512 / NEON, prebuilt in its npm package,
// about twice XNNPACK's rate a thread (`npm run bench -- products`). So on wasm each BatchMatMul
// kernel runs as one onnxruntime session of a single FusedMatMul node (onnxruntime's contrib op:
// MatMul with transpose flags and batch broadcasting), on views of the wasm heap: no copy in, none
// out (the output is written in place).
//
// onnxruntime's public session.run is asynchronous (a setImmediate around its native run), and a
// tfjs kernel must return its output; so this calls the native binding's synchronous run, which
// is onnxruntime-node's internal API: the package is pinned to an exact version. A session runs
// on setProductThreads' count of threads: one by default, as each of the engine's data-parallel
// threads (server/engine/parallel.ts) has a core; the cores a thread has to itself otherwise.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as protobuf from 'protobufjs/light';
import { heapOf } from './wasm-kernels';

/** What multiplies on the wasm backend. */
export type ProductEngine = 'mlas' | 'xnnpack';

interface OrtTensor {
  readonly dims: readonly number[];
}
type OrtTensorClass = new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
interface OrtSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, OrtTensor>, fetches: Record<string, OrtTensor>, options: object): unknown;
}
interface OrtBinding {
  binding: { InferenceSession: new () => OrtSession };
  initOrt(): void;
}

// Module names held in variables so that bundlers leave these optional imports to run time.
export const ORT_PACKAGE = 'onnxruntime-node';
const ORT_BINDING = 'onnxruntime-node/dist/binding.js';

// The few ONNX messages a one-node model needs (onnx.proto3's field numbers).
const onnx = protobuf.Root.fromJSON({
  nested: {
    Dimension: { fields: { dim_param: { type: 'string', id: 2 } } },
    TensorShape: { fields: { dim: { rule: 'repeated', type: 'Dimension', id: 1 } } },
    TensorType: { fields: { elem_type: { type: 'int32', id: 1 }, shape: { type: 'TensorShape', id: 2 } } },
    TypeProto: { fields: { tensor_type: { type: 'TensorType', id: 1 } } },
    ValueInfo: { fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 } } },
    Attribute: { fields: { name: { type: 'string', id: 1 }, f: { type: 'float', id: 2 }, i: { type: 'int64', id: 3 }, type: { type: 'int32', id: 20 } } },
    Node: {
      fields: {
        input: { rule: 'repeated', type: 'string', id: 1 },
        output: { rule: 'repeated', type: 'string', id: 2 },
        op_type: { type: 'string', id: 4 },
        attribute: { rule: 'repeated', type: 'Attribute', id: 5 },
        domain: { type: 'string', id: 7 },
      },
    },
    Graph: {
      fields: {
        node: { rule: 'repeated', type: 'Node', id: 1 },
        name: { type: 'string', id: 2 },
        input: { rule: 'repeated', type: 'ValueInfo', id: 11 },
        output: { rule: 'repeated', type: 'ValueInfo', id: 12 },
      },
    },
    OperatorSet: { fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } } },
    Model: {
      fields: {
        ir_version: { type: 'int64', id: 1 },
        producer_name: { type: 'string', id: 2 },
        graph: { type: 'Graph', id: 7 },
        opset_import: { rule: 'repeated', type: 'OperatorSet', id: 8 },
      },
    },
  },
}).lookupType('Model');

const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTRIBUTE_FLOAT = 1;
const ATTRIBUTE_INT = 2;

/** c = op(a)·op(b) over any batch dimensions (numpy broadcasting), as an ONNX model. */
function productModel(transposeA: boolean, transposeB: boolean): Uint8Array {
  // rank left open: one session serves 2-D, 3-D and 4-D products
  const value = (name: string) => ({ name, type: { tensor_type: { elem_type: FLOAT } } });
  const model = {
    ir_version: 8,
    producer_name: 'moslora-studio',
    opset_import: [
      { domain: '', version: 17 },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph: {
      name: 'product',
      node: [
        {
          input: ['a', 'b'],
          output: ['c'],
          op_type: 'FusedMatMul',
          domain: 'com.microsoft',
          attribute: [
            { name: 'transA', i: transposeA ? 1 : 0, type: ATTRIBUTE_INT },
            { name: 'transB', i: transposeB ? 1 : 0, type: ATTRIBUTE_INT },
            { name: 'alpha', f: 1, type: ATTRIBUTE_FLOAT },
          ],
        },
      ],
      input: [value('a'), value('b')],
      output: [value('c')],
    },
  };
  return onnx.encode(onnx.fromObject(model)).finish();
}

interface Mlas {
  Tensor: OrtTensorClass;
  /** One session per pair of transpose flags and thread count, made when first needed. */
  session(transposeA: boolean, transposeB: boolean, threads: number): OrtSession;
}

/** onnxruntime's CommonJS exports, whether import() gave them as named exports or as `default`. */
function commonJs<T>(namespace: { default?: T } & Partial<T>): T {
  return (namespace.default ?? namespace) as T;
}

async function loadMlas(): Promise<Mlas> {
  const { Tensor } = commonJs<{ Tensor: OrtTensorClass }>(await import(ORT_PACKAGE));
  const { binding, initOrt } = commonJs<OrtBinding>(await import(ORT_BINDING));
  initOrt();
  const sessions = new Map<string, OrtSession>();
  const session = (transposeA: boolean, transposeB: boolean, threads: number): OrtSession => {
    const key = `${transposeA}${transposeB}${threads}`;
    let found = sessions.get(key);
    if (!found) {
      found = new binding.InferenceSession();
      const bytes = productModel(transposeA, transposeB);
      found.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        // the pool's threads sleep between products instead of spinning on cores the step's other kernels use
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
      sessions.set(key, found);
    }
    return found;
  };
  // A product checked against its known value: a binding that loads but does not compute as
  // expected (another onnxruntime-node version) is found here, not in a training step.
  const out = new Float32Array(4);
  session(false, true, 1).run(
    { a: new Tensor('float32', Float32Array.of(1, 2, 3, 4), [2, 2]), b: new Tensor('float32', Float32Array.of(5, 6, 7, 8), [2, 2]) },
    { c: new Tensor('float32', out, [2, 2]) },
    {},
  );
  if (out.join() !== '17,23,39,53') throw new Error(`onnxruntime's product of a known pair gave [${out.join(', ')}], not [17, 23, 39, 53]`);
  return { Tensor, session };
}

let mlas: Mlas | undefined;
/** Whether the wasm backend's BatchMatMul runs on MLAS (installMlasProducts). */
let installed = false;
let engine: ProductEngine = 'xnnpack';
let threads = 1;
let mlasProducts = 0;

type KernelArgs = Parameters<tf.KernelFunc>[0];

function mlasProduct(args: KernelArgs, loaded: Mlas): tf.TensorInfo {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
  const backend = args.backend as BackendWasm;
  const [ra, rb] = [a.shape.length, b.shape.length];
  const inner = a.shape[ra - (transposeA ? 2 : 1)]!;
  tf.util.assert(inner === b.shape[rb - (transposeB ? 1 : 2)], () => `Error in matMul: inner shapes of tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`);
  const rows = a.shape[ra - (transposeA ? 1 : 2)]!;
  const columns = b.shape[rb - (transposeB ? 2 : 1)]!;
  const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), rows, columns];
  const out = backend.makeOutput(outShape, 'float32');
  // Views of the heap taken after makeOutput: an allocation may grow the heap and replace its buffer.
  const heap = heapOf(backend).buffer;
  const view = (t: tf.TensorInfo) => new loaded.Tensor('float32', new Float32Array(heap, backend.getMemoryOffset(t.dataId), tf.util.sizeFromShape(t.shape)), t.shape);
  loaded.session(transposeA, transposeB, threads).run({ a: view(a), b: view(b) }, { c: view(out) }, {});
  mlasProducts++;
  return out;
}

/**
 * Puts MLAS in place of the wasm backend's BatchMatMul, from now on; throws, and products stay on
 * XNNPACK, where onnxruntime-node cannot load (not installed, or no build for this platform).
 * Products of other dtypes or with an empty operand still go to XNNPACK.
 */
export async function installMlasProducts(): Promise<void> {
  if (!installed) {
    await loadMlasLibrary();
    const loaded = mlas!;
    const original = tf.getKernel('BatchMatMul', 'wasm');
    if (!original) throw new Error('tfjs-backend-wasm has no BatchMatMul kernel to replace; is it registered?');
    const kernelFunc: tf.KernelFunc = (args) => {
      const inputs = Object.values(args.inputs) as tf.TensorInfo[];
      const native = engine === 'mlas' && inputs.every((t) => t.dtype === 'float32' && tf.util.sizeFromShape(t.shape) > 0);
      return native ? mlasProduct(args, loaded) : original.kernelFunc(args);
    };
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel({ ...original, kernelFunc });
    installed = true;
  }
  engine = 'mlas';
}

/**
 * Loads onnxruntime's MLAS for mlasProductInto (the native weight store's products) without
 * touching any backend's kernels; throws where onnxruntime-node cannot load.
 */
export async function loadMlasLibrary(): Promise<void> {
  mlas ??= await loadMlas();
}

/** Whether MLAS has loaded (loadMlasLibrary or installMlasProducts), so mlasProductInto can run. */
export function mlasAvailable(): boolean {
  return mlas !== undefined;
}

/** What multiplies on wasm now. */
export function productEngine(): ProductEngine {
  return engine;
}

/** Switches the wasm backend's products between MLAS (once installed) and XNNPACK: for benchmarks and tests that compare the two. */
export function useProductEngine(next: ProductEngine): void {
  if (next === 'mlas' && !mlas) throw new Error('products cannot run on MLAS: installMlasProducts() has not succeeded');
  engine = next;
}

/** How many threads each product takes from now on (1 at first). */
export function setProductThreads(count: number): void {
  if (!Number.isInteger(count) || count < 1) throw new Error(`product threads must be a positive integer, got ${count}`);
  threads = count;
}

/** A float32 operand in row-major order: an array (or a view) and its shape. */
export interface FloatMatrix {
  data: Float32Array;
  shape: readonly number[];
}

/**
 * c = op(a)·op(b) on MLAS, on setProductThreads' threads, for any float32 arrays (views of the wasm
 * heap or arrays of their own): the products of kernels/native-weights.ts. onnxruntime's binding
 * refuses arrays over a SharedArrayBuffer. Throws until installMlasProducts() has succeeded.
 */
export function mlasProductInto(a: FloatMatrix, b: FloatMatrix, c: FloatMatrix, transposeA: boolean, transposeB: boolean): void {
  if (!mlas) throw new Error('products cannot run on MLAS: installMlasProducts() has not succeeded');
  const tensor = (m: FloatMatrix) => new mlas!.Tensor('float32', m.data, m.shape);
  mlas.session(transposeA, transposeB, threads).run({ a: tensor(a), b: tensor(b) }, { c: tensor(c) }, {});
  mlasProducts++;
}

/** How many products MLAS has computed in this thread. */
export function mlasProductCount(): number {
  return mlasProducts;
}
