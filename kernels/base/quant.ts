// The stored precisions of a frozen base weight, and how each packs a matrix W [rows, cols]
// (rows = d_out, cols = d_in: nn.Linear's layout, row-major). The adapter stays float32 (QLoRA's
// design); only the frozen base is stored low, and every product reads deq(W), the float32 values
// the stored codes stand for.
//
//   float32   4 B a weight, as given
//   bfloat16  2 B, float32 rounded to nearest even (kernels/half-precision.ts)
//   float16   2 B, likewise; beyond ±65504 it overflows to ±Inf
//   int8      1 B + a float32 scale per group of `groupSize` weights along a row (d_in):
//             symmetric, s = max|w| / 127, q = round(w / s) in [−127, 127] (ties away from zero),
//             deq = q·s. Codes [rows, cols] as int8, scales [rows, ⌈cols / g⌉]: the layout of
//             ONNX's blocked DequantizeLinear (axis 1, block_size g)
//   int4      ½ B + a float32 scale per group: symmetric with all 16 levels, s = m / −8 where m is
//             the group's value of largest magnitude, q = round(w / s) in [−8, 7] (ties away from
//             zero), stored as the code q + 8 in 0…15, deq = (code − 8)·s, so m itself is exact
//             and a weight opposite m beyond 7.5 steps clips to the 7th level (at most a step off).
//             Two codes a byte, the even column in the low nibble; each row padded to whole
//             groups: bytes [rows, ⌈cols / g⌉, g / 2], scales [rows, ⌈cols / g⌉]. This is the
//             layout of onnxruntime's MatMulNBits (bits 4, its default zero point 8)
//   nf4       ½ B + a float32 absmax per group: QLoRA's NormalFloat4 (Dettmers et al., 2023,
//             bitsandbytes' quant_type 'nf4'): code = the nearest of NF4's 16 levels to w / absmax,
//             deq = NF4[code]·absmax; packed as int4
//
// deq is computed in float64 and rounded once to float32. Scales are float32. Groups run along
// d_in, so the row of one output (one token's embedding, a block of lm_head) dequantises alone.

import { float16ToNumber, float32BitsToBfloat16, float32BitsToFloat16 } from './half-precision';

export const BASE_PRECISIONS = ['float32', 'bfloat16', 'float16', 'int8', 'int4', 'nf4'] as const;
export type BasePrecision = (typeof BASE_PRECISIONS)[number];

/** The precisions stored in groups with a scale each. */
export const GROUPED_PRECISIONS: readonly BasePrecision[] = ['int8', 'int4', 'nf4'];

/** Weights per scale where the precision has groups and none is named: bitsandbytes' 4-bit blocksize. */
export const DEFAULT_GROUP_SIZE = 64;
export const MIN_GROUP_SIZE = 16;
export const MAX_GROUP_SIZE = 1024;

export interface BaseFormat {
  precision: BasePrecision;
  /** Weights per scale along d_in: a power of two from 16 to 1024; ignored by float32, bfloat16, float16. */
  groupSize: number;
}

/** The stored formats of a frozen base: of its linear layers, and of its embedding and lm_head (which 8- and 4-bit bases leave unquantised, as bitsandbytes does). */
export interface BaseFormats {
  linear: BaseFormat;
  embedding: BaseFormat;
}

/** A float32 base, as checkpoints load without a precision asked for. */
export const FLOAT32_BASE: BaseFormats = { linear: { precision: 'float32', groupSize: DEFAULT_GROUP_SIZE }, embedding: { precision: 'float32', groupSize: DEFAULT_GROUP_SIZE } };

/** Whether every stored matrix is float32 (nothing rounded or quantised). */
export function isFloat32Base(formats: BaseFormats): boolean {
  return formats.linear.precision === 'float32' && formats.embedding.precision === 'float32';
}

/** The format in words: 'nf4 (groups of 64)', 'bfloat16'. */
export function describeFormat(format: BaseFormat): string {
  return isGrouped(format.precision) ? `${format.precision} (groups of ${format.groupSize})` : format.precision;
}

/** The formats in words: 'nf4 (groups of 64), embedding and lm_head float32', or one precision for all. */
export function describeBaseFormats(formats: BaseFormats): string {
  const linear = describeFormat(formats.linear);
  const embedding = describeFormat(formats.embedding);
  return linear === embedding ? linear : `${linear}, embedding and lm_head ${embedding}`;
}

/** QLoRA's NF4 levels: the quantiles of N(0, 1) scaled into [−1, 1], with an exact 0 (bitsandbytes' table). */
export const NF4_LEVELS = Float32Array.of(
  -1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1,
);
/** The midpoints between neighbouring NF4 levels: a value below midpoint i takes a code ≤ i. */
const NF4_MIDPOINTS = Float64Array.from({ length: 15 }, (_, i) => (NF4_LEVELS[i]! + NF4_LEVELS[i + 1]!) / 2);
const NF4_ZERO = 7;
const INT4_ZERO = 8;

export function isGrouped(precision: BasePrecision): boolean {
  return GROUPED_PRECISIONS.includes(precision);
}

export function isBasePrecision(value: unknown): value is BasePrecision {
  return typeof value === 'string' && (BASE_PRECISIONS as readonly string[]).includes(value);
}

/** Throws, saying what is allowed, for an unknown precision or a group size that is not a power of two in range. */
export function checkBaseFormat(format: BaseFormat): void {
  if (!isBasePrecision(format.precision)) {
    throw new RangeError(`base precision ${JSON.stringify(format.precision)} is not one of ${BASE_PRECISIONS.join(', ')}`);
  }
  const g = format.groupSize;
  if (isGrouped(format.precision) && !(Number.isInteger(g) && g >= MIN_GROUP_SIZE && g <= MAX_GROUP_SIZE && (g & (g - 1)) === 0)) {
    throw new RangeError(`group size ${g} for ${format.precision} must be a power of two from ${MIN_GROUP_SIZE} to ${MAX_GROUP_SIZE} (e.g. ${DEFAULT_GROUP_SIZE})`);
  }
}

/** Bytes a [rows, cols] matrix takes at this format: codes and scales. */
export function packedBytes(rows: number, cols: number, format: BaseFormat): number {
  const groups = Math.ceil(cols / format.groupSize);
  switch (format.precision) {
    case 'float32':
      return 4 * rows * cols;
    case 'bfloat16':
    case 'float16':
      return 2 * rows * cols;
    case 'int8':
      return rows * cols + 4 * rows * groups;
    case 'int4':
    case 'nf4':
      return rows * groups * (format.groupSize / 2) + 4 * rows * groups;
  }
}

/** What a matrix's memory is, to hand it to another thread (SharedArrayBuffers travel without a copy). */
export interface PackedMatrixParts {
  rows: number;
  cols: number;
  format: BaseFormat;
  codes: SharedArrayBuffer;
  scales: SharedArrayBuffer | null;
}

let float16Table: Float32Array | undefined;

/** The float32 value of every float16 bit pattern, made when first needed (256 KiB). */
function float16Values(): Float32Array {
  float16Table ??= Float32Array.from({ length: 65536 }, (_, half) => float16ToNumber(half));
  return float16Table;
}

/**
 * A matrix W [rows, cols] stored at a precision, in SharedArrayBuffers: outside the wasm heap and
 * V8's heap, and shareable with worker threads. Written by blocks (write), read back as float32
 * by rows (readRows).
 */
export class PackedMatrix {
  readonly groups: number;
  /** Bytes of codes per row (int4, nf4: padded to whole groups). */
  readonly rowBytes: number;
  private readonly bytes: Uint8Array;
  private readonly scaleValues: Float32Array | null;
  /** A 4-bit group's 16 dequantised levels, reused from group to group. */
  private readonly levels = new Float32Array(16);

  private constructor(
    readonly rows: number,
    readonly cols: number,
    readonly format: BaseFormat,
    private readonly codes: SharedArrayBuffer,
    private readonly scaleBuffer: SharedArrayBuffer | null,
  ) {
    this.groups = Math.ceil(cols / format.groupSize);
    this.rowBytes = format.precision === 'int4' || format.precision === 'nf4' ? this.groups * (format.groupSize / 2) : (cols * bitsOf(format.precision)) / 8;
    this.bytes = new Uint8Array(codes);
    this.scaleValues = scaleBuffer ? new Float32Array(scaleBuffer) : null;
  }

  /** A zero matrix (every code standing for 0) of this shape and format. */
  static allocate(rows: number, cols: number, format: BaseFormat): PackedMatrix {
    checkBaseFormat(format);
    if (!(Number.isSafeInteger(rows) && rows > 0 && Number.isSafeInteger(cols) && cols > 0)) {
      throw new RangeError(`a packed matrix needs positive integer rows and columns, got [${rows}, ${cols}]`);
    }
    const grouped = isGrouped(format.precision);
    const groups = Math.ceil(cols / format.groupSize);
    const scaleBytes = grouped ? 4 * rows * groups : 0;
    const matrix = new PackedMatrix(rows, cols, format, new SharedArrayBuffer(packedBytes(rows, cols, format) - scaleBytes), grouped ? new SharedArrayBuffer(scaleBytes) : null);
    const zero = format.precision === 'int4' ? INT4_ZERO * 0x11 : format.precision === 'nf4' ? NF4_ZERO * 0x11 : 0;
    if (zero !== 0) matrix.bytes.fill(zero);
    return matrix;
  }

  /** The matrix over memory another thread made (PackedMatrix.parts there). */
  static fromParts(parts: PackedMatrixParts): PackedMatrix {
    checkBaseFormat(parts.format);
    const matrix = new PackedMatrix(parts.rows, parts.cols, parts.format, parts.codes, parts.scales);
    const expected = packedBytes(parts.rows, parts.cols, parts.format);
    const actual = parts.codes.byteLength + (parts.scales?.byteLength ?? 0);
    if (actual !== expected || (parts.scales === null) === isGrouped(parts.format.precision)) {
      throw new RangeError(`packed matrix parts hold ${actual} bytes, but [${parts.rows}, ${parts.cols}] at ${parts.format.precision} (group ${parts.format.groupSize}) takes ${expected}`);
    }
    return matrix;
  }

  get parts(): PackedMatrixParts {
    return { rows: this.rows, cols: this.cols, format: this.format, codes: this.codes, scales: this.scaleBuffer };
  }

  /** Bytes held: codes and scales. */
  get byteLength(): number {
    return this.codes.byteLength + (this.scaleBuffer?.byteLength ?? 0);
  }

  /** The stored codes, as bytes (host byte order for float32 and the 16-bit precisions). */
  get codeBytes(): Uint8Array {
    return this.bytes;
  }

  /** The scales [rows, groups] (null for float32, bfloat16, float16). */
  get scales(): Float32Array | null {
    return this.scaleValues;
  }

  /**
   * Stores `values` [rowCount, colCount] (row-major) at rows row0… and columns col0…, rounding
   * or quantising them. A grouped precision quantises whole groups: col0 must start a group and
   * the block end on a group's end or the row's. Throws on a non-finite value there (its scale
   * would make the whole group NaN).
   */
  write(values: Float32Array, row0: number, rowCount: number, col0 = 0, colCount = this.cols): void {
    const { precision, groupSize } = this.format;
    if (row0 < 0 || col0 < 0 || rowCount < 0 || colCount < 0 || row0 + rowCount > this.rows || col0 + colCount > this.cols) {
      throw new RangeError(`block [${row0}…${row0 + rowCount}) × [${col0}…${col0 + colCount}) is outside the matrix [${this.rows}, ${this.cols}]`);
    }
    if (values.length < rowCount * colCount) throw new RangeError(`${values.length} values for a block of ${rowCount} × ${colCount}`);
    if (isGrouped(precision) && (col0 % groupSize !== 0 || (colCount % groupSize !== 0 && col0 + colCount !== this.cols))) {
      throw new RangeError(`columns [${col0}…${col0 + colCount}) do not cover whole groups of ${groupSize}`);
    }
    for (let r = 0; r < rowCount; r++) {
      const row = values.subarray(r * colCount, (r + 1) * colCount);
      const at = row0 + r;
      switch (precision) {
        case 'float32':
          new Float32Array(this.codes, 4 * (at * this.cols + col0), colCount).set(row);
          break;
        case 'bfloat16':
        case 'float16': {
          const out = new Uint16Array(this.codes, 2 * (at * this.cols + col0), colCount);
          const bits = new Uint32Array(row.buffer, row.byteOffset, colCount);
          const round = precision === 'bfloat16' ? float32BitsToBfloat16 : float32BitsToFloat16;
          for (let c = 0; c < colCount; c++) out[c] = round(bits[c]!);
          break;
        }
        default:
          for (let start = 0; start < colCount; start += groupSize) this.quantizeGroup(row, start, Math.min(start + groupSize, colCount), at, col0 + start);
      }
    }
  }

  /** Quantises row[start, end) into row `at`'s group that starts at column `col`. */
  private quantizeGroup(row: Float32Array, start: number, end: number, at: number, col: number): void {
    const scales = this.scaleValues!;
    const { precision, groupSize } = this.format;
    const g = col / groupSize;
    let extreme = 0;
    for (let i = start; i < end; i++) {
      const v = row[i]!;
      if (!(Math.abs(v) < Infinity)) throw new RangeError(`row ${at}, column ${col + i - start} is ${v}: ${precision} cannot quantise a non-finite weight`);
      if (Math.abs(v) > Math.abs(extreme)) extreme = v;
    }
    if (precision === 'int8') {
      const s = Math.fround(Math.abs(extreme) / 127);
      scales[at * this.groups + g] = s;
      const codes = new Int8Array(this.codes, at * this.cols + col, end - start);
      for (let i = start; i < end; i++) codes[i - start] = s === 0 ? 0 : clamp(roundAway(row[i]! / s), -127, 127);
      return;
    }
    // (+0, not −0, for a group of zeros)
    const s = precision === 'int4' ? Math.fround(extreme / -8) || 0 : Math.fround(Math.abs(extreme));
    scales[at * this.groups + g] = s;
    const code = (v: number): number => {
      if (precision === 'nf4') return s === 0 ? NF4_ZERO : nearestNf4(v / s);
      return s === 0 ? INT4_ZERO : clamp(roundAway(v / s), -8, 7) + INT4_ZERO;
    };
    const pad = precision === 'nf4' ? NF4_ZERO : INT4_ZERO;
    let byte = at * this.rowBytes + col / 2;
    for (let i = start; i < end; i += 2, byte++) this.bytes[byte] = code(row[i]!) | ((i + 1 < end ? code(row[i + 1]!) : pad) << 4);
  }

  /** ‖deq(W)_i‖² of each row i, [rows], summed in float64 a row at a time and rounded once. */
  rowNormsSquared(): Float32Array {
    const norms = new Float32Array(this.rows);
    const row = new Float32Array(this.cols);
    for (let r = 0; r < this.rows; r++) {
      this.readRows(r, 1, row);
      let sum = 0;
      for (let c = 0; c < this.cols; c++) sum += row[c]! * row[c]!;
      norms[r] = sum;
    }
    return norms;
  }

  /** deq(W) of rows [row0, row0 + count) into out [count, cols]. */
  readRows(row0: number, count: number, out: Float32Array): void {
    this.readBlock(row0, count, 0, this.cols, out);
  }

  /**
   * deq(W) of rows [row0, row0 + count) and columns [col0, col0 + width) into out [count, width].
   * A grouped precision's block starts on a group.
   */
  readBlock(row0: number, count: number, col0: number, width: number, out: Float32Array): void {
    const { cols, groups } = this;
    const { precision, groupSize: g } = this.format;
    if (row0 < 0 || count < 0 || row0 + count > this.rows || col0 < 0 || width < 0 || col0 + width > cols) {
      throw new RangeError(`block [${row0}…${row0 + count}) × [${col0}…${col0 + width}) is outside the matrix [${this.rows}, ${cols}]`);
    }
    if (isGrouped(precision) && col0 % g !== 0) throw new RangeError(`column ${col0} does not start a group of ${g}`);
    if (out.length < count * width) throw new RangeError(`an output of ${out.length} values cannot hold a block of ${count} × ${width}`);
    const scales = this.scaleValues!;
    for (let r = 0; r < count; r++) {
      const row = row0 + r;
      const from = row * cols + col0;
      const o = r * width;
      switch (precision) {
        case 'float32':
          out.set(new Float32Array(this.codes, 4 * from, width), o);
          break;
        case 'bfloat16': {
          const halves = new Uint16Array(this.codes, 2 * from, width);
          const bits = new Uint32Array(out.buffer, out.byteOffset + 4 * o, width);
          for (let i = 0; i < width; i++) bits[i] = halves[i]! << 16;
          break;
        }
        case 'float16': {
          const halves = new Uint16Array(this.codes, 2 * from, width);
          const table = float16Values();
          for (let i = 0; i < width; i++) out[o + i] = table[halves[i]!]!;
          break;
        }
        case 'int8': {
          const codes = new Int8Array(this.codes, from, width);
          for (let c = 0; c < width; c += g) {
            const s = scales[row * groups + (col0 + c) / g]!;
            const end = Math.min(c + g, width);
            for (let i = c; i < end; i++) out[o + i] = codes[i]! * s;
          }
          break;
        }
        default:
          this.readNibbleRow(row, col0, width, out, o);
      }
    }
  }

  /** deq(W) of one row's columns [col0, col0 + width) (col0 starting a group) into out at `at`. */
  private readNibbleRow(row: number, col0: number, width: number, out: Float32Array, at: number): void {
    const g = this.format.groupSize;
    const bytes = this.bytes;
    const scales = this.scaleValues!;
    const nf4 = this.format.precision === 'nf4';
    const levels = this.levels;
    for (let c = 0; c < width; c += g) {
      const s = scales[row * this.groups + (col0 + c) / g]!;
      for (let v = 0; v < 16; v++) levels[v] = nf4 ? NF4_LEVELS[v]! * s : (v - INT4_ZERO) * s;
      const end = Math.min(c + g, width);
      let byte = row * this.rowBytes + (col0 + c) / 2;
      let o = at + c;
      // pairs of columns, then an odd last one (the high nibble is the next column's or padding)
      let i = c;
      for (; i + 1 < end; i += 2, byte++, o += 2) {
        const b = bytes[byte]!;
        out[o] = levels[b & 0x0f]!;
        out[o + 1] = levels[b >> 4]!;
      }
      if (i < end) out[o] = levels[bytes[byte]! & 0x0f]!;
    }
  }
}

function bitsOf(precision: BasePrecision): number {
  return precision === 'float32' ? 32 : precision === 'bfloat16' || precision === 'float16' ? 16 : precision === 'int8' ? 8 : 4;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** Nearest integer, ties away from zero. */
function roundAway(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

/** Buckets of [−1, 1] for nearestNf4: narrower than any gap between midpoints, so a bucket holds at most one. */
const NF4_BUCKETS = 1024;
/** The code of each bucket's lower end. */
const NF4_BUCKET_CODES = Uint8Array.from({ length: NF4_BUCKETS + 1 }, (_, b) => {
  const x = -1 + (2 * b) / NF4_BUCKETS;
  let code = 0;
  while (code < 15 && x > NF4_MIDPOINTS[code]!) code++;
  while (code > 0 && x <= NF4_MIDPOINTS[code - 1]!) code--;
  return code;
});

/** The NF4 code nearest to x in [−1, 1] (ties to the lower level; x beyond ±1 takes the end's). */
function nearestNf4(x: number): number {
  const bucket = Math.floor(((x + 1) * NF4_BUCKETS) / 2);
  let code = NF4_BUCKET_CODES[bucket < 0 ? 0 : bucket > NF4_BUCKETS ? NF4_BUCKETS : bucket]!;
  while (code < 15 && x > NF4_MIDPOINTS[code]!) code++;
  while (code > 0 && x <= NF4_MIDPOINTS[code - 1]!) code--;
  return code;
}
