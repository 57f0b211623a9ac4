// A Hugging Face model folder's weights: `model.safetensors`, or shards listed by
// `model.safetensors.index.json` ({"metadata": {...}, "weight_map": {tensor name: shard file}}).
// Every shard is opened lazily (headers only); tensors are read one at a time.

import { lstat, readdir, readlink, stat } from 'node:fs/promises';
import { FileReadError, jsonErrorPlace, kindOf, readTextFile } from './files';
import { basename, join } from 'node:path';
import { unknownTensorProblem } from './names';
import { MAX_HEADER_BYTES, SafetensorsError, SafetensorsFile, type TensorInfo } from './safetensors';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface CheckpointTensorInfo extends TensorInfo {
  /** Path of the safetensors file that holds the tensor. */
  file: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function noWeightsError(dir: string): Promise<SafetensorsError> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    return new SafetensorsError(dir, `cannot read the model folder: ${(error as Error).message}`, { cause: error });
  }
  const weights = names.filter((name) => /\.(safetensors|bin|pt|pth|ckpt|h5|msgpack|gguf)$/.test(name)).sort();
  const found = weights.length > 0 ? `it holds ${weights.join(', ')}` : 'it holds no weight files';
  return new SafetensorsError(
    dir,
    `no safetensors weights: looked for ${SINGLE_FILE} and ${INDEX_FILE}, ${found}. PyTorch checkpoints (.bin, .pt) are not ` +
      `supported; convert the folder with Python: python -c "from transformers import AutoModelForCausalLM as M; ` +
      `M.from_pretrained('${dir}').save_pretrained('${dir}-safetensors', safe_serialization=True)"`,
  );
}

interface Index {
  metadata: Readonly<Record<string, unknown>>;
  /** Shard file name → the tensors the index places in it. */
  shards: Map<string, string[]>;
}

async function readIndex(path: string): Promise<Index> {
  let text: string;
  try {
    text = await readTextFile(path, 'the shard index', MAX_HEADER_BYTES);
  } catch (error) {
    if (!(error instanceof FileReadError)) throw error;
    throw new SafetensorsError(error.path, error.problem, { cause: error });
  }
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError(`${path}${jsonErrorPlace(text, error)}`, `the index is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!isObject(index) || !isObject(index.weight_map)) {
    throw new SafetensorsError(path, 'the index must be an object with a "weight_map" object mapping tensor names to shard files');
  }
  if (index.metadata !== undefined && !isObject(index.metadata)) {
    throw new SafetensorsError(path, '"metadata", when present, must be an object');
  }
  const shards = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(index.weight_map)) {
    if (typeof shard !== 'string' || shard === '' || basename(shard) !== shard) {
      throw new SafetensorsError(
        path,
        `"weight_map" entry ${JSON.stringify(name)} must name a shard file in the same folder, got ${JSON.stringify(shard)}`,
      );
    }
    shards.set(shard, [...(shards.get(shard) ?? []), name]);
  }
  if (shards.size === 0) throw new SafetensorsError(path, '"weight_map" is empty: the index names no tensors');
  return { metadata: index.metadata ?? {}, shards };
}

/** The weights of a model folder, across all its shards. */
export class Checkpoint {
  private readonly byPath: ReadonlyMap<string, SafetensorsFile>;

  private constructor(
    readonly dir: string,
    /** The safetensors files, opened lazily. */
    readonly files: readonly SafetensorsFile[],
    /** Every tensor of every file, with the file that holds it. */
    readonly tensors: ReadonlyMap<string, CheckpointTensorInfo>,
    /** The index's "metadata" when sharded, else the file's `__metadata__`. */
    readonly metadata: Readonly<Record<string, unknown>>,
  ) {
    this.byPath = new Map(files.map((file) => [file.path, file]));
  }

  /** Opens `model.safetensors` (as transformers does, preferred) or the shards of `model.safetensors.index.json`. */
  static async open(dir: string): Promise<Checkpoint> {
    const single = join(dir, SINGLE_FILE);
    if (await isFile(single)) {
      const file = await SafetensorsFile.open(single);
      const tensors = new Map([...file.tensors].map(([name, info]) => [name, { ...info, file: file.path }]));
      return new Checkpoint(dir, [file], tensors, file.metadata);
    }
    const indexPath = join(dir, INDEX_FILE);
    if (!(await isFile(indexPath))) {
      if (await lstat(single).catch(() => null)) {
        const target = await stat(single).catch(() => null);
        throw new SafetensorsError(single, target ? `is ${kindOf(target)}, not a regular file; the weights must be a file` : `is a link to ${await readlink(single)}, which does not exist`);
      }
      throw await noWeightsError(dir);
    }
    const index = await readIndex(indexPath);
    const files: SafetensorsFile[] = [];
    try {
      for (const [shard, listed] of index.shards) {
        const path = join(dir, shard);
        if (!(await isFile(path))) {
          throw new SafetensorsError(
            indexPath,
            `shard ${shard} (holding ${listed.length} tensors, e.g. ${JSON.stringify(listed[0])}) is missing from ${dir}; the download is incomplete`,
          );
        }
        files.push(await SafetensorsFile.open(path));
      }
      return new Checkpoint(dir, files, tableOf(indexPath, index, files), index.metadata);
    } catch (error) {
      await Promise.all(files.map((file) => file.close()));
      throw error;
    }
  }

  info(name: string): CheckpointTensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(this.dir, unknownTensorProblem(name, this.tensors.keys()));
    return info;
  }

  async readFloat32(name: string): Promise<Float32Array> {
    return this.byPath.get(this.info(name).file)!.readFloat32(name);
  }

  /** Rows [first, first + count) of a tensor along its first axis, as float32 (SafetensorsFile.readFloat32Rows). */
  async readFloat32Rows(name: string, first: number, count: number): Promise<Float32Array> {
    return this.byPath.get(this.info(name).file)!.readFloat32Rows(name, first, count);
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((file) => file.close()));
  }
}

/** The union of the shards' tables, checked against the index. Tensors a shard holds beyond the index are kept. */
function tableOf(indexPath: string, index: Index, files: readonly SafetensorsFile[]): Map<string, CheckpointTensorInfo> {
  const table = new Map<string, CheckpointTensorInfo>();
  for (const file of files) {
    for (const [name, info] of file.tensors) {
      const other = table.get(name);
      if (other) {
        throw new SafetensorsError(indexPath, `tensor ${JSON.stringify(name)} is in two shards, ${basename(other.file)} and ${basename(file.path)}`);
      }
      table.set(name, { ...info, file: file.path });
    }
  }
  for (const [shard, listed] of index.shards) {
    const file = files.find((candidate) => basename(candidate.path) === shard)!;
    const absent = listed.find((name) => !file.tensors.has(name));
    if (absent !== undefined) {
      const elsewhere = table.get(absent);
      throw new SafetensorsError(
        indexPath,
        `lists tensor ${JSON.stringify(absent)} in ${shard}, but ${shard} has no such tensor` +
          (elsewhere ? ` (it is in ${basename(elsewhere.file)})` : ''),
      );
    }
  }
  return table;
}
