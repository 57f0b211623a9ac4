// The frozen base's products on the webgpu backend, reading the weights as stored
// (kernels/base/quant.ts: float32, bfloat16, float16, int8, int4, nf4 with per-group scales along
// d_in) and dequantising inside the kernel: no float32 copy of a packed weight is made on the GPU.
//
//   forward         y [M, d_out] = x [M, d_in] · deq(W)ᵀ
//   input gradient  dx [M, d_in] = dy [M, d_out] · deq(W)          (W is frozen: no weight gradient)
//
// uploadPacked puts a PackedMatrix on the GPU as the chunks of rows kernels/base/webgpu-plan.ts
// plans for the device's limits: per chunk an int32 tensor of its code bytes (whole words, read in
// WGSL as u32 and unpacked) and a float32 tensor of its scales. The forward product runs a
// kernel per chunk, each making its chunk's columns of y, joined along d_out; the input gradient
// runs a kernel per chunk, each adding its rows' share dy[:, chunk] · deq(W[chunk]) to the sum
// of the chunks before it (the first starts from zero), so dx is made in as many dispatches as
// chunks and never summed apart. The rows of a frozen embedding table (a tied lm_head's W serves
// both) are gathered the same way: a kernel per chunk writes the rows of the ids in its chunk
// and copies the rest from the chunk before.
//
// Each kernel is a tiled product: a workgroup of 16 × 16 threads makes a 16 × 16 tile of the
// output, walking the inner dimension 16 at a time; each thread loads one element of the input
// tile and dequantises one weight of the weight tile into workgroup memory, then sums over the
// tile. A dequantised weight is exactly PackedMatrix.readRows' value (the same float32 product
// of the code's level and its scale), so the products differ from x · deq(W) by float32
// summation alone.
import * as tf from '@tensorflow/tfjs-core';
import { NF4_LEVELS, isGrouped, type BaseFormat, type BasePrecision, type PackedMatrix } from './quant';
import { chunkRows, rowCodeBytes, type BufferLimits, type RowChunk } from './webgpu-plan';
import { elementwiseProgram, registerWebgpuProgram, runOwnKernel, ownKernelAvailable, type WebgpuUtil } from '../backends/webgpu-program';

export const QUANT_PRODUCT = 'MosloraQuantProduct';
export const QUANT_GATHER = 'MosloraQuantGather';

/** A PackedMatrix on the GPU: its chunks of rows, each its codes (int32 words) and its scales. */
export interface GpuPackedMatrix {
  rows: number;
  cols: number;
  format: BaseFormat;
  chunks: GpuChunk[];
  /** Bytes held on the GPU. */
  byteLength: number;
  dispose(): void;
}

export interface GpuChunk extends RowChunk {
  codes: tf.Tensor1D;
  scales: tf.Tensor1D | null;
}

/** What the kernel computes: x · deq(W[chunk])ᵀ, or acc + dy[:, chunk] · deq(W[chunk]). */
interface QuantProductAttrs {
  precision: BasePrecision;
  groupSize: number;
  transpose: boolean;
  /** The chunk's first row, its rows, and the matrix's columns. */
  row0: number;
  rows: number;
  cols: number;
}

const TILE = 16;
const THREADS = TILE * TILE;

/** A float32 as a WGSL literal that parses back to the same float32. */
const f32Literal = (v: number) => (Number.isInteger(v) ? `${v}.0` : `${v}`);

/** fn weight(o, j) -> f32: deq(W) at the chunk's row o, column j (WGSL), for a precision. */
function weightFunction(precision: BasePrecision): string {
  const word = (byte: string) => `bitcast<u32>(codes[(${byte}) >> 2u])`;
  const scale = 'scales[o * uniforms.groups + j / uniforms.groupSize]';
  const nibble = `
      let b = u32(o * uniforms.rowBytes + (j >> 1u));
      let code = extractBits(${word('b')}, 8u * (b & 3u) + 4u * u32(j & 1), 4u);`;
  const body: Record<BasePrecision, string> = {
    float32: 'return bitcast<f32>(codes[o * uniforms.cols + j]);',
    bfloat16: `
      let e = u32(o * uniforms.cols + j);
      let bits = ${word('2u * e')};
      return bitcast<f32>(select(bits << 16u, bits & 0xffff0000u, (e & 1u) == 1u));`,
    float16: `
      let e = u32(o * uniforms.cols + j);
      let pair = unpack2x16float(${word('2u * e')});
      return select(pair.x, pair.y, (e & 1u) == 1u);`,
    int8: `
      let e = u32(o * uniforms.cols + j);
      let q = extractBits(bitcast<i32>(${word('e')}), 8u * (e & 3u), 8u);
      return f32(q) * ${scale};`,
    int4: `${nibble}
      return (f32(code) - 8.0) * ${scale};`,
    nf4: `${nibble}
      return NF4[code] * ${scale};`,
  };
  const nf4 = precision === 'nf4' ? `var<private> NF4 : array<f32, 16> = array<f32, 16>(${Array.from(NF4_LEVELS, f32Literal).join(', ')});` : '';
  return `${nf4}
    fn weight(o : i32, j : i32) -> f32 {
      ${body[precision]}
    }`;
}

/**
 * The program for one chunk. Forward: out [M, rows] = x [M, cols] · deq(W)ᵀ, the inner dimension
 * cols. Transposed: out [M, cols] = acc + x[:, row0 + …] · deq(W), x being dy [M, d_out] and the
 * inner dimension the chunk's rows.
 */
function quantProductProgram(util: WebgpuUtil, outShape: [number, number], a: QuantProductAttrs, accumulate: boolean) {
  const grouped = isGrouped(a.precision);
  const variableNames = ['x', 'codes', ...(grouped ? ['scales'] : []), ...(accumulate ? ['acc'] : [])];
  const tiles = Math.ceil(outShape[0] / TILE) * Math.ceil(outShape[1] / TILE);
  const workgroupSize: [number, number, number] = [THREADS, 1, 1];
  // the weight tile holds b(t, c) at [t * TILE + c]: forward b(t, c) = W(c, t), transposed W(t, c)
  const loadWeight = a.transpose
    ? `if (t0 + ly < inner && c0 + lx < n) { w = weight(t0 + ly, c0 + lx); }
        bTile[ly * ${TILE} + lx] = w;`
    : `if (c0 + ly < n && t0 + lx < inner) { w = weight(c0 + ly, t0 + lx); }
        bTile[lx * ${TILE} + ly] = w;`;
  return {
    variableNames,
    outputShape: outShape,
    shaderKey: `moslora_quant_${a.precision}_${a.transpose ? 'dx' : 'y'}${accumulate ? '_acc' : ''}`,
    dispatchLayout: util.flatDispatchLayout(outShape),
    dispatch: util.computeDispatch({ x: [0] }, [tiles * THREADS], workgroupSize),
    workgroupSize,
    uniforms: CHUNK_UNIFORMS,
    getUserCode: () => `
      ${weightFunction(a.precision)}
      var<workgroup> aTile : array<f32, ${THREADS}>;
      var<workgroup> bTile : array<f32, ${THREADS}>;
      fn main(index : i32) {
        let tile = index / ${THREADS};
        let lane = index % ${THREADS};
        let ly = lane / ${TILE};
        let lx = lane % ${TILE};
        let m = uniforms.outShape[0];
        let n = uniforms.outShape[1];
        let i0 = (tile / ((n + ${TILE - 1}) / ${TILE})) * ${TILE};
        let c0 = (tile % ((n + ${TILE - 1}) / ${TILE})) * ${TILE};
        let inner = ${a.transpose ? 'uniforms.rows' : 'uniforms.cols'};
        let xOffset = ${a.transpose ? 'uniforms.row0' : '0'};
        var sum = 0.0;
        for (var t0 = 0; t0 < inner; t0 = t0 + ${TILE}) {
          var v = 0.0;
          if (i0 + ly < m && t0 + lx < inner) { v = x[(i0 + ly) * uniforms.xShape[1] + xOffset + t0 + lx]; }
          aTile[ly * ${TILE} + lx] = v;
          var w = 0.0;
          ${loadWeight}
          workgroupBarrier();
          for (var k = 0; k < ${TILE}; k = k + 1) {
            sum = sum + aTile[ly * ${TILE} + k] * bTile[k * ${TILE} + lx];
          }
          workgroupBarrier();
        }
        if (i0 + ly < m && c0 + lx < n) {
          let at = (i0 + ly) * n + c0 + lx;
          result[at] = sum${accumulate ? ' + acc[at]' : ''};
        }
      }`,
  };
}

/** Registers the product and the gather on the webgpu backend (with its package's webgpu_util). */
export function registerWebgpuQuantKernels(util: WebgpuUtil): void {
  registerWebgpuQuantProduct(util);
  registerWebgpuQuantGather(util);
}

function registerWebgpuQuantProduct(util: WebgpuUtil): void {
  registerWebgpuProgram<QuantProductAttrs>(QUANT_PRODUCT, (inputs, a) => {
    const { x, codes, scales, acc } = inputs;
    const m = x!.shape[0]!;
    const outShape: [number, number] = a.transpose ? [m, a.cols] : [m, a.rows];
    return {
      program: quantProductProgram(util, outShape, a, acc !== undefined),
      inputs: [x!, codes!, ...(scales ? [scales] : []), ...(acc ? [acc] : [])],
      uniforms: chunkUniforms(a),
    };
  });
}

/** The uniforms weight() reads, and the chunk's first row and rows. */
const CHUNK_UNIFORMS = 'row0 : i32, rows : i32, cols : i32, groups : i32, groupSize : i32, rowBytes : i32,';

function chunkUniforms(a: Omit<QuantProductAttrs, 'transpose'>) {
  const groups = Math.ceil(a.cols / a.groupSize);
  const rowBytes = rowCodeBytes(a.cols, { precision: a.precision, groupSize: a.groupSize });
  return [a.row0, a.rows, a.cols, groups, a.groupSize, rowBytes].map((v) => ({ type: 'int32', data: [v] }));
}

/** out [n, cols]: row t is deq(W)'s row ids[t] where the chunk holds it, else acc's row t (0 without acc). */
function quantGatherProgram(util: WebgpuUtil, shape: [number, number], precision: BasePrecision, accumulate: boolean) {
  const grouped = isGrouped(precision);
  return elementwiseProgram(util, {
    key: `moslora_quant_gather_${precision}${accumulate ? '_acc' : ''}`,
    variableNames: ['ids', 'codes', ...(grouped ? ['scales'] : []), ...(accumulate ? ['acc'] : [])],
    shape,
    uniforms: CHUNK_UNIFORMS,
    declarations: weightFunction(precision),
    body: `
      let t = index / uniforms.cols;
      let j = index % uniforms.cols;
      let o = ids[t] - uniforms.row0;
      var value = ${accumulate ? 'acc[index]' : '0.0'};
      if (o >= 0 && o < uniforms.rows) { value = weight(o, j); }
      setOutputAtIndex(index, value);`,
  });
}

/** Registers the gather on the webgpu backend (with its package's webgpu_util). */
function registerWebgpuQuantGather(util: WebgpuUtil): void {
  registerWebgpuProgram<Omit<QuantProductAttrs, 'transpose'>>(QUANT_GATHER, (inputs, a) => {
    const { ids, codes, scales, acc } = inputs;
    return {
      program: quantGatherProgram(util, [ids!.shape[0]!, a.cols], a.precision, acc !== undefined),
      inputs: [ids!, codes!, ...(scales ? [scales] : []), ...(acc ? [acc] : [])],
      uniforms: chunkUniforms(a),
    };
  });
}

/** Whether the current backend runs the quantised products (webgpu, once its kernels are registered). */
export function quantProductAvailable(): boolean {
  return ownKernelAvailable(QUANT_PRODUCT);
}

/** The current webgpu device's buffer limits. */
export function deviceBufferLimits(): BufferLimits {
  const device = (tf.backend() as unknown as { device?: { limits: BufferLimits } }).device;
  if (tf.getBackend() !== 'webgpu' || !device) throw new Error(`the quantised products run on webgpu, not on ${tf.getBackend()}`);
  return device.limits;
}

/** The parts of tfjs-backend-webgpu's backend (4.22) an upload uses. */
interface UploadingBackend {
  uploadToGPU(dataId: object): void;
}

/**
 * Puts `matrix` on the GPU now, as codes and scales in chunks of rows that keep every buffer
 * within `limits` (the current device's unless given): the transient copies on the host are one
 * chunk's at a time. Dispose the result when the weight is no longer needed.
 */
export function uploadPacked(matrix: PackedMatrix, limits: BufferLimits = deviceBufferLimits()): GpuPackedMatrix {
  if (!quantProductAvailable()) throw new Error(`the quantised products run on webgpu, not on ${tf.getBackend()}`);
  const backend = tf.backend() as unknown as UploadingBackend;
  const { rows, cols, format, rowBytes, groups } = matrix;
  const upload = <T extends tf.Tensor1D>(t: T): T => {
    backend.uploadToGPU(t.dataId);
    return t;
  };
  const chunks = chunkRows(rows, cols, format, limits).map((c): GpuChunk => {
    const bytes = new Uint8Array(c.codeBytes);
    bytes.set(matrix.codeBytes.subarray(c.row0 * rowBytes, (c.row0 + c.rows) * rowBytes));
    const codes = upload(tf.tensor1d(new Int32Array(bytes.buffer), 'int32'));
    const scales = matrix.scales ? upload(tf.tensor1d(matrix.scales.slice(c.row0 * groups, (c.row0 + c.rows) * groups), 'float32')) : null;
    return { ...c, codes, scales };
  });
  return {
    rows,
    cols,
    format,
    chunks,
    byteLength: chunks.reduce((sum, c) => sum + c.codeBytes + c.scaleBytes, 0),
    dispose: () => tf.dispose(chunks.flatMap((c) => (c.scales ? [c.codes, c.scales] : [c.codes]))),
  };
}

function runChunk(x: tf.Tensor2D, packed: GpuPackedMatrix, chunk: GpuChunk, transpose: boolean, acc: tf.Tensor2D | null): tf.Tensor2D {
  const attrs: QuantProductAttrs = { precision: packed.format.precision, groupSize: packed.format.groupSize, transpose, row0: chunk.row0, rows: chunk.rows, cols: packed.cols };
  const inputs: tf.NamedTensorMap = { x, codes: chunk.codes };
  if (chunk.scales) inputs['scales'] = chunk.scales;
  if (acc) inputs['acc'] = acc;
  return runOwnKernel(QUANT_PRODUCT, inputs, attrs);
}

/** x [M, cols] · deq(W)ᵀ → [M, rows]: a kernel per chunk, the chunks' columns joined. */
export function quantForward(x: tf.Tensor2D, packed: GpuPackedMatrix): tf.Tensor2D {
  checkInput(x, packed.cols, 'x');
  return tf.tidy(() => {
    const parts = packed.chunks.map((chunk) => runChunk(x, packed, chunk, false, null));
    return parts.length === 1 ? parts[0]! : tf.concat(parts, 1);
  });
}

/** dy [M, rows] · deq(W) → [M, cols]: quantLinear's input gradient, a kernel per chunk, each adding to the last. */
export function quantInputGradient(dy: tf.Tensor2D, packed: GpuPackedMatrix): tf.Tensor2D {
  checkInput(dy, packed.rows, 'dy');
  let dx: tf.Tensor2D | null = null;
  for (const chunk of packed.chunks) {
    const next = runChunk(dy, packed, chunk, true, dx);
    dx?.dispose();
    dx = next;
  }
  return dx!;
}

function checkInput(t: tf.Tensor, width: number, name: string): void {
  if (t.rank !== 2 || t.shape[1] !== width || t.dtype !== 'float32') {
    throw new Error(`${QUANT_PRODUCT}: ${name} must be float32 [M, ${width}], got ${t.dtype} [${t.shape.join(', ')}]`);
  }
}

/**
 * x · deq(W)ᵀ for x [..., cols] → [..., rows], W stored packed on the GPU: a frozen linear layer
 * without its bias. The gradient flows to x only, dy · deq(W).
 */
export function quantLinear<R extends tf.Rank>(x: tf.Tensor<R>, packed: GpuPackedMatrix): tf.Tensor<R> {
  const inner = x.shape[x.rank - 1];
  if (x.rank < 2 || inner !== packed.cols) {
    throw new Error(`x: shape [${x.shape.join(', ')}] does not end in the weight's d_in = ${packed.cols}`);
  }
  const outShape = [...x.shape.slice(0, -1), packed.rows];
  const product = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([]);
    return {
      value: tf.tidy(() => tf.reshape(quantForward(tf.reshape(input, [-1, packed.cols]), packed), outShape)),
      gradFunc: (dy: tf.Tensor) => [tf.tidy(() => tf.reshape(quantInputGradient(tf.reshape(dy, [-1, packed.rows]), packed), input.shape))],
    };
  });
  return product(x) as tf.Tensor<R>;
}

/**
 * The rows ids of deq(W): int32 ids [...] → [..., cols], a kernel per chunk. A frozen table, so
 * no gradient. The ids are read back and checked first: an id outside [0, rows) throws.
 */
export async function quantGather(packed: GpuPackedMatrix, ids: tf.Tensor): Promise<tf.Tensor> {
  if (ids.dtype !== 'int32') throw new Error(`${QUANT_GATHER}: ids must be int32, got ${ids.dtype}`);
  return quantGatherRows(packed, ids, await ids.data());
}

/**
 * quantGather where the caller has ids' values on the host (token ids come from there): `values`
 * are checked instead of read back, so the gather runs at once. An id outside [0, rows) throws.
 */
export function quantGatherRows(packed: GpuPackedMatrix, ids: tf.Tensor, values: ArrayLike<number>): tf.Tensor {
  if (ids.dtype !== 'int32') throw new Error(`${QUANT_GATHER}: ids must be int32, got ${ids.dtype}`);
  if (values.length !== ids.size) throw new Error(`${QUANT_GATHER}: ${values.length} host values for ${ids.size} ids`);
  for (let i = 0; i < values.length; i++) {
    const id = values[i]!;
    if (!(Number.isInteger(id) && id >= 0 && id < packed.rows)) throw new RangeError(`token id ${id} (position ${i}) is outside the embedding table's ${packed.rows} rows`);
  }
  return tf.tidy(() => {
    const flat = tf.reshape(ids, [-1]);
    let out: tf.Tensor2D | null = null;
    for (const chunk of packed.chunks) {
      const attrs = { precision: packed.format.precision, groupSize: packed.format.groupSize, row0: chunk.row0, rows: chunk.rows, cols: packed.cols };
      const inputs: tf.NamedTensorMap = { ids: flat, codes: chunk.codes };
      if (chunk.scales) inputs['scales'] = chunk.scales;
      if (out) inputs['acc'] = out;
      out = runOwnKernel<tf.Tensor2D>(QUANT_GATHER, inputs, attrs);
    }
    return tf.reshape(out!, [...ids.shape, packed.cols]);
  });
}

/** Float32 values of deq(W) gathered at once by quantRowNormsSquared (whole rows, at least one). */
const NORM_BLOCK_BYTES = 16 * 1024 ** 2;

/** ‖deq(W)_i‖² of each row i, [rows] (DoRA reads them): rows gathered a block at a time, never all of W as float32. */
export function quantRowNormsSquared(packed: GpuPackedMatrix): tf.Tensor1D {
  const per = Math.max(1, Math.floor(NORM_BLOCK_BYTES / (4 * packed.cols)));
  return tf.tidy(() => {
    const parts: tf.Tensor1D[] = [];
    for (let r0 = 0; r0 < packed.rows; r0 += per) {
      const ids = Int32Array.from({ length: Math.min(per, packed.rows - r0) }, (_, i) => r0 + i);
      parts.push(tf.tidy(() => tf.sum(tf.square(quantGatherRows(packed, tf.tensor1d(ids, 'int32'), ids)), 1) as tf.Tensor1D));
    }
    return parts.length === 1 ? parts[0]! : tf.concat(parts);
  });
}
