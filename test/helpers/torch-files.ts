// Hand-built pickles and torch.save-style zips, for tests of the readers that must refuse them.
import { Buffer } from 'node:buffer';
import { ZipFile } from 'yazl';

/** Pickle opcodes by name (CPython's Lib/pickle.py). */
export const OP = {
  PROTO: 0x80,
  STOP: 0x2e,
  MARK: 0x28,
  EMPTY_DICT: 0x7d,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  NEWFALSE: 0x89,
  NONE: 0x4e,
  BININT1: 0x4b,
  BININT2: 0x4d,
  BINPUT: 0x71,
  BINGET: 0x68,
  REDUCE: 0x52,
  BUILD: 0x62,
  BINPERSID: 0x51,
  STACK_GLOBAL: 0x93,
  INST: 0x69,
  BINBYTES: 0x42,
  BINUNICODE: 0x58,
} as const;

export type PicklePart = number | Uint8Array;

/** Concatenates opcodes (numbers are single bytes) and encoded operands. */
export function pickle(...parts: PicklePart[]): Uint8Array {
  return Buffer.concat(parts.map((part) => (typeof part === 'number' ? Buffer.from([part]) : Buffer.from(part))));
}

/** GLOBAL: "c<module>\n<name>\n". */
export function global(module: string, name: string): Uint8Array {
  return Buffer.from(`c${module}\n${name}\n`, 'utf8');
}

/** BINUNICODE: a length-prefixed UTF-8 string. */
export function str(text: string): Uint8Array {
  const bytes = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(bytes.length);
  return Buffer.concat([Buffer.from([OP.BINUNICODE]), length, bytes]);
}

/** A non-negative int below 65536 (BININT1 or BININT2). */
export function int(value: number): Uint8Array {
  return value < 256 ? Buffer.from([OP.BININT1, value]) : Buffer.from([OP.BININT2, value & 0xff, value >> 8]);
}

function tuple(items: PicklePart[]): Uint8Array {
  return pickle(OP.MARK, ...items, OP.TUPLE);
}

export interface PickledTensor {
  name: string;
  key: string;
  storageType?: string;
  numel: number;
  offset?: number;
  shape: number[];
  stride?: number[];
}

/** One tensor as torch pickles it: _rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict()). */
export function tensorPickle(t: PickledTensor): Uint8Array {
  const stride = t.stride ?? t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
  const storage = tuple([str('storage'), global('torch', t.storageType ?? 'FloatStorage'), str(t.key), str('cpu'), int(t.numel)]);
  return pickle(
    global('torch._utils', '_rebuild_tensor_v2'),
    tuple([storage, OP.BINPERSID, int(t.offset ?? 0), tuple(t.shape.map(int)), tuple(stride.map(int)), OP.NEWFALSE, global('collections', 'OrderedDict'), OP.EMPTY_TUPLE, OP.REDUCE]),
    OP.REDUCE,
  );
}

/** A state dict {name: tensor} pickled with protocol 2, as torch.save writes data.pkl. */
export function stateDictPickle(tensors: PickledTensor[]): Uint8Array {
  return pickle(OP.PROTO, 2, OP.EMPTY_DICT, OP.MARK, ...tensors.flatMap((t) => [str(t.name), tensorPickle(t)]), OP.SETITEMS, OP.STOP);
}

/** A zip of `entries`, stored uncompressed as torch.save stores them. */
export function zip(entries: Record<string, Uint8Array>): Promise<Buffer> {
  const archive = new ZipFile();
  for (const [name, data] of Object.entries(entries)) archive.addBuffer(Buffer.from(data), name, { compress: false });
  archive.end();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    archive.outputStream.on('data', (chunk: Buffer) => chunks.push(chunk));
    archive.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    archive.outputStream.on('error', reject);
  });
}

/** float32 values as the little-endian bytes of a storage. */
export function floats(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}
