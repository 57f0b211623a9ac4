// The safetensors format (huggingface/safetensors), read lazily and written atomically.
//
//   [u64 little-endian N][N bytes of UTF-8 JSON header][data buffer]
//   header: { "__metadata__"?: {string: string},
//             "<tensor name>": { "dtype": "F32", "shape": [d0, d1, …], "data_offsets": [begin, end] }, … }
//   offsets are relative to the start of the data buffer; the tensors tile it exactly.
//
// The header is validated as the reference's `SafeTensors::read_metadata` does: the length is
// bounded before anything is allocated, every entry's shape × dtype matches its byte span, and
// the spans, sorted, start at 0, neither overlap nor leave holes, and end where the file ends.

import { constants as bufferConstants } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { TextDecoder } from 'node:util';
import { unknownTensorProblem } from './names';

/** Bits per element of every dtype the reference implementation knows (its `Dtype::bitsize`). */
export const DTYPE_BITS = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
} as const;
export type Dtype = keyof typeof DTYPE_BITS;

/** Dtypes that `readFloat32` converts. */
export const FLOAT32_READABLE_DTYPES = ['F64', 'F32', 'F16', 'BF16'] as const;
/** Dtypes that `writeSafetensors` encodes. */
export const WRITABLE_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type WritableDtype = (typeof WRITABLE_DTYPES)[number];

/** The reference's bound on the JSON header (MAX_HEADER_SIZE); a longer one is refused unread. */
export const MAX_HEADER_BYTES = 100_000_000;

const LENGTH_PREFIX_BYTES = 8;
const METADATA_KEY = '__metadata__';
// fs reads and writes take at most 2 GiB - 1 bytes per call; larger transfers go in chunks.
const IO_CHUNK_BYTES = 1 << 30;
const HOST_IS_LITTLE_ENDIAN = endianness() === 'LE';

export class SafetensorsError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`${path}: ${problem}`, options);
    this.name = 'SafetensorsError';
  }
}

export interface TensorInfo {
  dtype: Dtype;
  shape: readonly number[];
  byteLength: number;
  /** Absolute position of the tensor's first byte in the file (8 + N + data_offsets[0]). */
  offset: number;
}

function formatShape(shape: readonly unknown[]): string {
  return `[${shape.join(', ')}]`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonNegativeInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isDtype(value: unknown): value is Dtype {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BITS, value);
}

interface Span {
  name: string;
  info: TensorInfo;
  begin: number;
  end: number;
}

function parseEntry(path: string, name: string, value: unknown, dataStart: number): Span {
  const fail = (problem: string): never => {
    throw new SafetensorsError(path, `tensor ${JSON.stringify(name)}: ${problem}`);
  };
  if (!isObject(value)) return fail(`expected an object {dtype, shape, data_offsets}, got ${describe(value)}`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (dtype === undefined) fail('missing "dtype"');
  if (!isDtype(dtype)) return fail(`dtype ${describe(dtype)} is not a safetensors dtype (known: ${Object.keys(DTYPE_BITS).join(', ')})`);
  if (shape === undefined) fail('missing "shape"');
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    return fail(`"shape" must be an array of non-negative integers, got ${describe(shape)}`);
  }
  if (offsets === undefined) fail('missing "data_offsets"');
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    return fail(`"data_offsets" must be [begin, end], two non-negative integers, got ${describe(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(`data_offsets [${begin}, ${end}] end before they begin`);
  // BigInt: a hostile shape such as [2^40, 2^40] must not wrap around to a plausible size.
  const bits = shape.reduce((product: bigint, dim: number) => product * BigInt(dim), 1n) * BigInt(DTYPE_BITS[dtype]);
  if (bits % 8n !== 0n) fail(`shape ${formatShape(shape)} × ${dtype} is ${bits} bits, not a whole number of bytes`);
  if (bits / 8n !== BigInt(end - begin)) {
    fail(`shape ${formatShape(shape)} × ${dtype} is ${bits / 8n} bytes but data_offsets span ${end - begin}`);
  }
  return { name, begin, end, info: { dtype, shape, byteLength: end - begin, offset: dataStart + begin } };
}

function parseMetadata(path: string, value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw new SafetensorsError(path, `"${METADATA_KEY}" must be an object of strings, got ${describe(value)}`);
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') {
      throw new SafetensorsError(path, `"${METADATA_KEY}" entry ${JSON.stringify(key)} must be a string, got ${describe(item)}`);
    }
  }
  return Object.fromEntries(Object.entries(value as Record<string, string>));
}

/** Checks that the sorted spans tile [0, dataLength) exactly, as the reference's `Metadata::validate`. */
function checkLayout(path: string, spans: Span[], dataLength: number): void {
  spans.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let cursor = 0;
  let previous: Span | undefined;
  for (const span of spans) {
    const where = `"${span.name}" (data_offsets [${span.begin}, ${span.end}])`;
    if (span.begin < cursor) {
      throw new SafetensorsError(path, `tensors "${previous!.name}" (data_offsets [${previous!.begin}, ${previous!.end}]) and ${where} overlap`);
    }
    if (span.begin > cursor) {
      throw new SafetensorsError(
        path,
        previous
          ? `${span.begin - cursor} bytes between tensors "${previous.name}" (ends at ${cursor}) and ${where} belong to no tensor`
          : `the first ${span.begin} bytes of the data buffer belong to no tensor: the first tensor is ${where}`,
      );
    }
    cursor = span.end;
    previous = span;
  }
  if (cursor > dataLength) {
    throw new SafetensorsError(
      path,
      `the tensors need ${cursor} bytes of data but only ${dataLength} follow the header: the file is truncated (${cursor - dataLength} bytes missing)`,
    );
  }
  if (cursor < dataLength) {
    throw new SafetensorsError(path, `the last ${dataLength - cursor} bytes of the file belong to no tensor (the tensors end at data byte ${cursor} of ${dataLength})`);
  }
}

function parseHeader(
  path: string,
  headerBytes: Uint8Array,
  dataStart: number,
  fileSize: number,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch (error) {
    throw new SafetensorsError(path, 'header is not valid UTF-8', { cause: error });
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError(path, `header is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!isObject(header)) {
    throw new SafetensorsError(path, `header must be a JSON object mapping tensor names to {dtype, shape, data_offsets}, got ${describe(header)}`);
  }
  const spans = Object.entries(header)
    .filter(([name]) => name !== METADATA_KEY)
    .map(([name, value]) => parseEntry(path, name, value, dataStart));
  checkLayout(path, spans, fileSize - dataStart);
  return {
    tensors: new Map(spans.map((span) => [span.name, span.info])),
    metadata: parseMetadata(path, header[METADATA_KEY]),
  };
}

/** Fills `target` from `position`, in as many reads as it takes. */
async function readInto(handle: FileHandle, path: string, target: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const length = Math.min(target.length - done, IO_CHUNK_BYTES);
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(target, done, length, position + done));
    } catch (error) {
      throw new SafetensorsError(path, `reading ${what} failed: ${(error as Error).message}`, { cause: error });
    }
    if (bytesRead === 0) {
      throw new SafetensorsError(path, `the file ends at byte ${position + done}, inside ${what}; was it truncated after it was opened?`);
    }
    done += bytesRead;
  }
}

/** Little-endian F64, F32, F16 or BF16 values → float32 (a view, not a copy, for F32 on a little-endian host). */
export function decodeFloat32(bytes: Uint8Array, dtype: (typeof FLOAT32_READABLE_DTYPES)[number]): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes.byteLength / (DTYPE_BITS[dtype] / 8);
  if (dtype === 'F32' && HOST_IS_LITTLE_ENDIAN) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
  const out = new Float32Array(count);
  const bits = new Uint32Array(out.buffer);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'BF16':
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      break;
    case 'F16':
      for (let i = 0; i < count; i++) {
        const half = view.getUint16(2 * i, true);
        if ((half & 0x7c00) === 0 && (half & 0x3ff) !== 0) {
          out[i] = (half & 0x8000 ? -1 : 1) * (half & 0x3ff) * 2 ** -24; // subnormal: m · 2^-24
        } else {
          bits[i] = float16BitsToFloat32Bits(half);
        }
      }
      break;
  }
  return out;
}

function float16BitsToFloat32Bits(half: number): number {
  const sign = (half & 0x8000) << 16;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = (half & 0x3ff) << 13;
  if (exponent === 0) return sign; // ±0 (subnormals are decoded by value)
  if (exponent === 0x1f) return sign | 0x7f800000 | mantissa; // ±Inf, NaN with its payload
  return sign | ((exponent + 112) << 23) | mantissa; // rebias 15 → 127
}

/** A safetensors file opened lazily: only the header is read until a tensor is asked for. */
export class SafetensorsFile {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    /** Every tensor, in the order of its data in the file. */
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    /** The header's `__metadata__` ({} when it has none). */
    readonly metadata: Readonly<Record<string, string>>,
    readonly byteLength: number,
  ) {}

  /** Reads and validates the length prefix and the header; no tensor data is read. */
  static async open(path: string): Promise<SafetensorsFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw new SafetensorsError(path, `cannot open: ${(error as Error).message}`, { cause: error });
    }
    try {
      const { size } = await handle.stat();
      if (size < LENGTH_PREFIX_BYTES) {
        throw new SafetensorsError(path, `the file is ${size} bytes, too short for the 8-byte header length that starts a safetensors file`);
      }
      const prefix = new Uint8Array(LENGTH_PREFIX_BYTES);
      await readInto(handle, path, prefix, 0, 'the header length');
      const declared = new DataView(prefix.buffer).getBigUint64(0, true);
      if (declared > BigInt(MAX_HEADER_BYTES)) {
        throw new SafetensorsError(
          path,
          `header length ${declared} exceeds the ${MAX_HEADER_BYTES}-byte limit: the file is not safetensors, or its first 8 bytes are corrupt`,
        );
      }
      const headerLength = Number(declared);
      const dataStart = LENGTH_PREFIX_BYTES + headerLength;
      if (dataStart > size) {
        throw new SafetensorsError(path, `header length ${headerLength} runs past the end of the file (${size} bytes): the file is truncated`);
      }
      const headerBytes = new Uint8Array(headerLength);
      await readInto(handle, path, headerBytes, LENGTH_PREFIX_BYTES, 'the header');
      const { tensors, metadata } = parseHeader(path, headerBytes, dataStart, size);
      return new SafetensorsFile(path, handle, tensors, metadata, size);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(this.path, unknownTensorProblem(name, this.tensors.keys()));
    return info;
  }

  /** Reads one tensor's bytes (and only those) and converts them to float32. */
  async readFloat32(name: string): Promise<Float32Array> {
    const { dtype, shape, byteLength, offset } = this.info(name);
    const fail = (problem: string): never => {
      throw new SafetensorsError(this.path, `tensor ${JSON.stringify(name)}: ${problem}`);
    };
    if (this.closed) fail('cannot read, the file has been closed');
    if (!(FLOAT32_READABLE_DTYPES as readonly string[]).includes(dtype)) {
      fail(`dtype ${dtype} cannot be read as float32 (readable: ${FLOAT32_READABLE_DTYPES.join(', ')})`);
    }
    const floatDtype = dtype as (typeof FLOAT32_READABLE_DTYPES)[number];
    const float32Bytes = (byteLength / (DTYPE_BITS[floatDtype] / 8)) * 4;
    const limit = bufferConstants.MAX_LENGTH;
    if (byteLength > limit || float32Bytes > limit) {
      fail(`shape ${formatShape(shape)} × ${dtype} needs ${Math.max(byteLength, float32Bytes)} bytes as float32, more than the ${limit} bytes one array can hold`);
    }
    const bytes = new Uint8Array(byteLength);
    await readInto(this.handle, this.path, bytes, offset, `tensor ${JSON.stringify(name)}`);
    return decodeFloat32(bytes, floatDtype);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

export interface TensorToWrite {
  name: string;
  dtype: WritableDtype;
  shape: readonly number[];
  /** Row-major values; F16 and BF16 are rounded to nearest, ties to even. */
  data: Float32Array;
}

/** float32 bits → float16 bits, round to nearest even; NaN stays NaN (quiet), overflow becomes ±Inf. */
export function float32BitsToFloat16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  const roundUp = (rest: number, half: number, lsb: number) => (rest > half || (rest === half && lsb === 1) ? 1 : 0);
  if (abs > 0x7f800000) return sign | 0x7e00 | ((abs >>> 13) & 0x3ff); // NaN: quiet bit set, top of payload kept
  if (abs >= 0x47800000) return sign | 0x7c00; // ≥ 65536 or Inf
  if (abs >= 0x38800000) {
    // Normal half (≥ 2^-14): rebias the exponent 127 → 15, drop 13 mantissa bits. A carry out of
    // the mantissa bumps the exponent, which is right, up to 65520 → Inf.
    const half = (abs >>> 13) - (112 << 10);
    return sign | (half + roundUp(abs & 0x1fff, 0x1000, half & 1));
  }
  const exponent = abs >>> 23;
  if (exponent < 102) return sign; // below 2^-25, half of the smallest subnormal: rounds to ±0
  // Subnormal half: m · 2^-24 with m = (1.f · 2^(e-127)) / 2^-24 = (1f) >> (126 - e).
  const mantissa = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exponent;
  const half = mantissa >>> shift;
  return sign | (half + roundUp(mantissa & ((1 << shift) - 1), 1 << (shift - 1), half & 1));
}

/** float32 bits → bfloat16 bits, round to nearest even; NaN stays NaN (quiet). */
export function float32BitsToBfloat16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

function encode(tensor: TensorToWrite): Uint8Array {
  const { data, dtype } = tensor;
  if (dtype === 'F32' && HOST_IS_LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bytes = new Uint8Array(data.length * (DTYPE_BITS[dtype] / 8));
  const view = new DataView(bytes.buffer);
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < data.length; i++) view.setUint32(4 * i, bits[i]!, true);
      break;
    case 'F16':
      for (let i = 0; i < data.length; i++) view.setUint16(2 * i, float32BitsToFloat16(bits[i]!), true);
      break;
    case 'BF16':
      for (let i = 0; i < data.length; i++) view.setUint16(2 * i, float32BitsToBfloat16(bits[i]!), true);
      break;
  }
  return bytes;
}

// The reference's `serialize` order: larger dtypes first, so that every tensor starts at a
// multiple of its element size (the data buffer itself starts at a multiple of 8), then by name.
const WRITE_RANK: Record<WritableDtype, number> = { F32: 0, BF16: 1, F16: 2 };

function checkTensors(path: string, tensors: readonly TensorToWrite[]): void {
  const seen = new Set<string>();
  for (const { name, dtype, shape, data } of tensors) {
    const fail = (problem: string): never => {
      throw new SafetensorsError(path, `tensor ${JSON.stringify(name)}: ${problem}`);
    };
    if (name === METADATA_KEY) fail(`"${METADATA_KEY}" is reserved for the header's metadata`);
    if (seen.has(name)) fail('given twice');
    seen.add(name);
    if (!(WRITABLE_DTYPES as readonly string[]).includes(dtype)) fail(`cannot write dtype ${describe(dtype)} (writable: ${WRITABLE_DTYPES.join(', ')})`);
    if (!shape.every(isNonNegativeInteger)) fail(`shape ${formatShape(shape)} must hold non-negative integers`);
    const count = shape.reduce((product, dim) => product * BigInt(dim), 1n);
    if (count !== BigInt(data.length)) fail(`shape ${formatShape(shape)} holds ${count} values but data has ${data.length}`);
  }
}

function headerBytes(path: string, ordered: readonly TensorToWrite[], metadata: Readonly<Record<string, string>>): Uint8Array {
  // Built by hand, not with JSON.stringify(object): objects enumerate integer-like keys ("0") first.
  const entries: string[] = [];
  const metadataKeys = Object.keys(metadata).sort();
  for (const key of metadataKeys) {
    if (typeof metadata[key] !== 'string') {
      throw new SafetensorsError(path, `metadata ${JSON.stringify(key)} must be a string, got ${describe(metadata[key])}`);
    }
  }
  if (metadataKeys.length > 0) {
    entries.push(`"${METADATA_KEY}":{${metadataKeys.map((key) => `${JSON.stringify(key)}:${JSON.stringify(metadata[key])}`).join(',')}}`);
  }
  let offset = 0;
  for (const { name, dtype, shape, data } of ordered) {
    const end = offset + data.length * (DTYPE_BITS[dtype] / 8);
    entries.push(`${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = Buffer.from(`{${entries.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8; // spaces up to a multiple of 8, as the reference pads
  if (padded > MAX_HEADER_BYTES) {
    throw new SafetensorsError(path, `the header would be ${padded} bytes, over the ${MAX_HEADER_BYTES}-byte limit readers enforce`);
  }
  const bytes = new Uint8Array(LENGTH_PREFIX_BYTES + padded).fill(0x20);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, LENGTH_PREFIX_BYTES);
  return bytes;
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, Math.min(bytes.length - done, IO_CHUNK_BYTES));
    done += bytesWritten;
  }
}

/**
 * Writes `tensors` to `path` as safetensors. The file is written beside `path` under a temporary
 * name, flushed, then renamed over `path`: a crash leaves the old file or the new one, never half.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata: Readonly<Record<string, string>> = {},
): Promise<void> {
  checkTensors(path, tensors);
  const ordered = [...tensors].sort((x, y) => WRITE_RANK[x.dtype] - WRITE_RANK[y.dtype] || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  const header = headerBytes(path, ordered, metadata);
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, 'wx');
    await writeAll(handle, header);
    for (const tensor of ordered) await writeAll(handle, encode(tensor));
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temporary, path);
  } catch (error) {
    await handle?.close();
    await unlink(temporary).catch(() => undefined);
    throw new SafetensorsError(path, `writing failed, nothing was written: ${(error as Error).message}`, { cause: error });
  }
}
