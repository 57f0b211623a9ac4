// PyTorch's checkpoint format as torch.save writes it since torch 1.6 (torch/serialization.py,
// caffe2/serialize/inline_container.cc): a zip, its entries stored uncompressed, of
//   <archive>/data.pkl     the saved object pickled (protocol 2 by default); each storage in it is
//                          a persistent id ('storage', torch.FloatStorage, '<key>', 'cpu', numel)
//   <archive>/data/<key>   that storage's elements, back to back, in the byte order below
//   <archive>/byteorder    "little" or "big" (torch ≥ 2.1 writes it; absent: little)
//   <archive>/version, <archive>/.data/…   bookkeeping, not read
// under one top-level folder (the file's name without its extension, or "archive").
//
// Read here as a state dict {name: tensor} of F32, F16 or BF16 tensors, the way
// torch.load(weights_only=True) reads it but without Python's pickle: data.pkl goes through
// `unpickle` with rules that allow only what such a dict needs, so nothing is imported or run.
// A tensor is a view (offset, shape, strides) of a storage that other tensors may share;
// reading one copies its elements out in row-major order. Every entry's CRC-32 is checked.

import { constants as bufferConstants } from 'node:buffer';
import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import * as yauzl from 'yauzl';
import { unknownTensorProblem } from './names';
import { describePickleValue, PickleGlobal, PickleObject, PickleTuple, unpickle, type PickleGlobalRule, type PickleRules, type PickleValue } from './pickle';
import { decodeFloat32 } from './safetensors';

export type TorchDtype = 'F32' | 'F16' | 'BF16';

/** The storage classes torch pickles for each dtype (their legacy names, kept for serialization). */
const STORAGE_DTYPES: Readonly<Record<string, TorchDtype>> = {
  'torch.FloatStorage': 'F32',
  'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16',
};
const BYTES_PER_ELEMENT: Readonly<Record<TorchDtype, number>> = { F32: 4, F16: 2, BF16: 2 };
const ORDERED_DICT = 'collections.OrderedDict';
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';

/** data.pkl of a state dict is a few bytes per tensor; a larger one is refused unread. */
const MAX_PICKLE_BYTES = 64 * 1024 * 1024;
/** A state dict has an entry per storage; a zip directory this long is refused before it is listed. */
const MAX_ENTRIES = 100_000;
const ZIP_SIGNATURE = [0x50, 0x4b]; // "PK"
const PICKLE_PROTO = 0x80;

export class TorchCheckpointError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`${path}: ${problem}`, options);
    this.name = 'TorchCheckpointError';
  }
}

class StorageRef extends PickleObject {
  readonly kind = 'storage';
  constructor(
    readonly key: string,
    readonly dtype: TorchDtype,
    readonly numel: number,
  ) {
    super();
  }
}

class TensorRef extends PickleObject {
  readonly kind = 'tensor';
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {
    super();
  }
}

function isCount(value: PickleValue): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function counts(value: PickleValue, what: string): number[] {
  if (!(value instanceof PickleTuple) || !value.items.every(isCount)) {
    throw new Error(`${what} must be a tuple of non-negative ints, got ${describePickleValue(value)}`);
  }
  return value.items as number[];
}

/**
 * The rules for a state dict: an OrderedDict (empty when built, filled by SETITEMS, its
 * `_metadata` — the modules' version numbers — accepted and dropped), tensors rebuilt from
 * storages, and the three storage types as persistent ids. One StorageRef per key, so tensors
 * that share a storage share it here too.
 */
function stateDictRules(): PickleRules {
  const orderedDicts = new WeakSet<object>();
  const storages = new Map<string, StorageRef>();
  return {
    globals: new Map<string, PickleGlobalRule>([
      [
        ORDERED_DICT,
        {
          call: (args) => {
            if (args.length !== 0) throw new Error(`expected no arguments, got ${args.length}`);
            const dict = new Map<string | number, PickleValue>();
            orderedDicts.add(dict);
            return dict;
          },
        },
      ],
      [
        REBUILD_TENSOR,
        {
          call: (args) => {
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            if (args.length !== 6 && args.length !== 7) throw new Error(`expected 6 or 7 arguments, got ${args.length}`);
            const [storage, offset, size, stride, requiresGrad, hooks, metadata] = args;
            if (!(storage instanceof StorageRef)) throw new Error(`the storage is ${describePickleValue(storage!)}, not a persistent storage`);
            if (!isCount(offset!)) throw new Error(`the storage offset must be a non-negative int, got ${describePickleValue(offset!)}`);
            const shape = counts(size!, 'the size');
            const strides = counts(stride!, 'the stride');
            if (strides.length !== shape.length) throw new Error(`size [${shape.join(', ')}] and stride [${strides.join(', ')}] differ in length`);
            if (typeof requiresGrad !== 'boolean') throw new Error(`requires_grad must be a bool, got ${describePickleValue(requiresGrad!)}`);
            if (!(hooks instanceof Map) || hooks.size > 0) throw new Error(`backward_hooks must be an empty OrderedDict, got ${describePickleValue(hooks!)}`);
            if (metadata !== undefined && metadata !== null && !(metadata instanceof Map && metadata.size === 0)) {
              throw new Error(`tensor metadata is not read, got ${describePickleValue(metadata)}`);
            }
            return new TensorRef(storage, offset, shape, strides);
          },
        },
      ],
      ...Object.keys(STORAGE_DTYPES).map((name): [string, PickleGlobalRule] => [name, {}]),
    ]),
    persistentLoad: (pid) => {
      const items = pid instanceof PickleTuple ? pid.items : [];
      const [tag, type, key, location, numel] = items;
      if (items.length !== 5 || tag !== 'storage' || !(type instanceof PickleGlobal) || typeof key !== 'string' || typeof location !== 'string' || !isCount(numel!)) {
        throw new Error(`expected ('storage', <storage type>, <key>, <location>, <numel>), got ${describePickleValue(pid)}`);
      }
      const dtype = STORAGE_DTYPES[type.qualifiedName] ?? fail(`${type.qualifiedName} is not a storage type`);
      const known = storages.get(key);
      if (known && (known.dtype !== dtype || known.numel !== numel)) {
        throw new Error(`storage ${key} is ${known.numel} × ${known.dtype} in one place and ${numel} × ${dtype} in another`);
      }
      const storage = known ?? new StorageRef(key, dtype, numel);
      storages.set(key, storage);
      return storage;
    },
    build: (target, state) => {
      if (!(target instanceof Map) || !orderedDicts.has(target)) throw new Error(`sets the state of ${describePickleValue(target)}; only an OrderedDict's _metadata may be set`);
      if (!(state instanceof Map) || [...state.keys()].some((key) => key !== '_metadata')) {
        throw new Error(`an OrderedDict's state may only hold _metadata, got ${describePickleValue(state)}`);
      }
    },
  };
}

function fail(problem: string): never {
  throw new Error(problem);
}

/** Whether strides are the row-major ones for `shape` (size-1 dimensions may have any stride). */
function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d]! !== 1 && stride[d]! !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

/** The elements of a strided view of `values`, in row-major order. */
function gather(values: Float32Array, { offset, shape, stride }: TensorRef, count: number): Float32Array {
  if (isContiguous(shape, stride)) return values.slice(offset, offset + count);
  const out = new Float32Array(count);
  const index = new Array<number>(shape.length).fill(0);
  let source = offset;
  for (let i = 0; i < count; i++) {
    out[i] = values[source]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d]!++;
      source += stride[d]!;
      if (index[d]! < shape[d]!) break;
      source -= stride[d]! * shape[d]!;
      index[d] = 0;
    }
  }
  return out;
}

export interface TorchTensorInfo {
  dtype: TorchDtype;
  shape: readonly number[];
}

/** A torch.save'd state dict, opened: its tensors listed and checked, their data read on demand. */
export class TorchCheckpoint {
  private constructor(
    readonly path: string,
    private readonly zip: yauzl.ZipFile,
    private readonly entries: ReadonlyMap<string, yauzl.Entry>,
    private readonly archive: string,
    private readonly refs: ReadonlyMap<string, TensorRef>,
    /** Every tensor, in the order of the saved dict. */
    readonly tensors: ReadonlyMap<string, TorchTensorInfo>,
  ) {}

  /** Reads the zip's directory and data.pkl and checks every tensor against its storage; no tensor data is read. */
  static async open(path: string): Promise<TorchCheckpoint> {
    const failAt = (problem: string, cause?: unknown): never => {
      throw new TorchCheckpointError(path, problem, cause === undefined ? undefined : { cause });
    };
    await checkSignature(path);
    let zip: yauzl.ZipFile;
    try {
      zip = await yauzl.openPromise(path, { autoClose: false, strictFileNames: true });
    } catch (error) {
      return failAt(`not a readable zip archive: ${(error as Error).message}`, error);
    }
    try {
      if (zip.entryCount > MAX_ENTRIES) failAt(`the zip lists ${zip.entryCount} entries, more than the ${MAX_ENTRIES} a state dict of tensors would have`);
      const listed: yauzl.Entry[] = [];
      try {
        for await (const entry of zip.eachEntry()) listed.push(entry);
      } catch (error) {
        failAt(`the zip's directory is damaged (${(error as Error).message})`, error);
      }
      const entries = new Map<string, yauzl.Entry>();
      for (const entry of listed) {
        if (entries.has(entry.fileName)) failAt(`the zip lists ${entry.fileName} twice`);
        entries.set(entry.fileName, entry);
      }
      const archives = [...entries.keys()].map((name) => /^([^/]+)\/data\.pkl$/.exec(name)?.[1]).filter((name) => name !== undefined);
      if (archives.length !== 1) {
        failAt(
          archives.length === 0
            ? 'the zip holds no <folder>/data.pkl: it is not a checkpoint torch.save wrote'
            : `the zip holds ${archives.length} data.pkl files (${archives.join(', ')}); torch.save writes one`,
        );
      }
      const archive = archives[0]!;
      const read = (name: string, limit: number) => readEntry(path, zip, entries.get(name)!, limit);
      if (entries.has(`${archive}/byteorder`)) {
        const order = (await read(`${archive}/byteorder`, 16)).toString('ascii');
        if (order !== 'little') failAt(`${archive}/byteorder says ${JSON.stringify(order)}; only little-endian checkpoints are read`);
      }
      const pickleName = `${archive}/data.pkl`;
      let saved: PickleValue;
      try {
        saved = unpickle(await read(pickleName, MAX_PICKLE_BYTES), stateDictRules());
      } catch (error) {
        if (error instanceof TorchCheckpointError) throw error;
        return failAt(`${pickleName}: ${(error as Error).message}`, error);
      }
      if (!(saved instanceof Map)) return failAt(`${pickleName} holds ${describePickleValue(saved)}, not a state dict {name: tensor}`);
      const refs = new Map<string, TensorRef>();
      for (const [name, value] of saved) {
        if (typeof name !== 'string') failAt(`${pickleName}: the key ${name} is not a tensor name (a string)`);
        if (!(value instanceof TensorRef)) return failAt(`${pickleName}: "${name}" is ${describePickleValue(value)}, not a tensor`);
        checkView(path, archive, entries, name as string, value);
        refs.set(name as string, value);
      }
      const tensors = new Map([...refs].map(([name, ref]) => [name, { dtype: ref.storage.dtype, shape: ref.shape }]));
      return new TorchCheckpoint(path, zip, entries, archive, refs, tensors);
    } catch (error) {
      zip.close();
      throw error;
    }
  }

  /** Reads one tensor's elements (its storage, then the view) as float32. */
  async readFloat32(name: string): Promise<Float32Array> {
    const ref = this.refs.get(name);
    if (!ref) throw new TorchCheckpointError(this.path, unknownTensorProblem(name, this.tensors.keys()));
    const { key, dtype, numel } = ref.storage;
    const count = ref.shape.reduce((product, dim) => product * dim, 1);
    if (numel * 4 > bufferConstants.MAX_LENGTH) {
      throw new TorchCheckpointError(this.path, `tensor "${name}": its storage of ${numel} × ${dtype} needs more than the ${bufferConstants.MAX_LENGTH} bytes one array holds as float32`);
    }
    const bytes = await readEntry(this.path, this.zip, this.entries.get(`${this.archive}/data/${key}`)!, numel * BYTES_PER_ELEMENT[dtype]);
    return gather(decodeFloat32(bytes, dtype), ref, count);
  }

  async close(): Promise<void> {
    this.zip.close();
  }
}

/** A zip starts with "PK"; torch.save's pre-1.6 format is a bare pickle (PROTO first). */
async function checkSignature(path: string): Promise<void> {
  const head = new Uint8Array(2);
  let read = 0;
  try {
    const handle = await open(path, 'r');
    try {
      ({ bytesRead: read } = await handle.read(head, 0, 2, 0));
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new TorchCheckpointError(path, `cannot open: ${(error as Error).message}`, { cause: error });
  }
  if (read === 2 && head[0] === ZIP_SIGNATURE[0] && head[1] === ZIP_SIGNATURE[1]) return;
  if (read >= 1 && head[0] === PICKLE_PROTO) {
    throw new TorchCheckpointError(
      path,
      "torch.save's pre-1.6 format (a bare pickle, _use_new_zipfile_serialization=False), which is not read: save it again with torch ≥ 1.6's default format, or as safetensors",
    );
  }
  throw new TorchCheckpointError(path, `not a PyTorch checkpoint: it starts with ${read === 0 ? 'nothing (the file is empty)' : `bytes ${[...head.subarray(0, read)].map((b) => `0x${b.toString(16).padStart(2, '0')}`).join(' ')}`}, not a zip archive's "PK"`);
}

/** Checks that a tensor's view lies inside its storage and that the zip holds that storage, whole. */
function checkView(path: string, archive: string, entries: ReadonlyMap<string, yauzl.Entry>, name: string, ref: TensorRef): void {
  const { key, dtype, numel } = ref.storage;
  const where = `tensor "${name}"`;
  const entry = entries.get(`${archive}/data/${key}`);
  if (!entry) throw new TorchCheckpointError(path, `${where}: its storage ${archive}/data/${key} is not in the zip`);
  const bytes = numel * BYTES_PER_ELEMENT[dtype];
  if (entry.uncompressedSize !== bytes) {
    throw new TorchCheckpointError(path, `${where}: ${archive}/data/${key} holds ${entry.uncompressedSize} bytes, but data.pkl says ${numel} × ${dtype} = ${bytes}`);
  }
  // BigInt: a hostile shape or stride must not wrap around to an index that looks in bounds.
  const count = ref.shape.reduce((product, dim) => product * BigInt(dim), 1n);
  if (count === 0n) return;
  const last = ref.shape.reduce((sum, dim, d) => sum + BigInt(dim - 1) * BigInt(ref.stride[d]!), BigInt(ref.offset));
  if (last >= BigInt(numel)) {
    throw new TorchCheckpointError(
      path,
      `${where}: offset ${ref.offset}, size [${ref.shape.join(', ')}] and stride [${ref.stride.join(', ')}] reach element ${last} of storage ${key}, which has ${numel}`,
    );
  }
}

/** One entry's bytes, its size bounded before anything is allocated and its CRC-32 checked. */
async function readEntry(path: string, zip: yauzl.ZipFile, entry: yauzl.Entry, limit: number): Promise<Buffer> {
  const where = entry.fileName;
  if (entry.uncompressedSize > limit) {
    throw new TorchCheckpointError(path, `${where} is ${entry.uncompressedSize} bytes, more than the ${limit} expected`);
  }
  const out = Buffer.alloc(entry.uncompressedSize);
  let filled = 0;
  try {
    for await (const chunk of await zip.openReadStreamPromise(entry)) {
      (chunk as Buffer).copy(out, filled);
      filled += (chunk as Buffer).length;
    }
  } catch (error) {
    throw new TorchCheckpointError(path, `${where} cannot be read (${(error as Error).message}): the file is truncated or damaged`, { cause: error });
  }
  const sum = crc32(out);
  if (sum !== entry.crc32) {
    throw new TorchCheckpointError(path, `${where}: its CRC-32 is 0x${sum.toString(16).padStart(8, '0')} but the zip's directory says 0x${entry.crc32.toString(16).padStart(8, '0')}: the file is damaged`);
  }
  return out;
}
