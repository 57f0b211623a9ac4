// Merging an adapter into its base model: a new model folder in the base's own layout (same
// shards, tensor names and dtypes), with W′ = W + s·B·M·A computed in float32 for each adapted
// module. Shard by shard, so peak memory is about one shard, not the whole model.
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { mergeWeight } from '../../kernels/adapter/merge';
import { maxAbsDifference, takeValues } from '../../kernels/backends/read';
import { Checkpoint } from '../formats/checkpoint';
import { CausalLM } from '../models/model';
import { WRITABLE_DTYPES, writeSafetensors, type TensorToWrite, type WritableDtype } from '../formats/safetensors';
import type { LinearModule } from '../models/modules';
import type { Adapter } from '../../kernels/adapter/linear';

export interface MergeProgress {
  shard: string;
  shardIndex: number;
  shards: number;
  mergedModules: number;
}

export interface MergedModel {
  outDir: string;
  mergedModules: string[];
  shards: number;
}

/**
 * Writes `outDir` as a copy of the model in `baseDir` with the adapters merged in. The folder is
 * built under a temporary name and renamed at the end: an interrupted merge leaves no half model.
 */
export async function mergeIntoModel(
  baseDir: string,
  outDir: string,
  adapters: ReadonlyMap<string, Adapter>,
  modules: readonly LinearModule[],
  options: { overwrite?: boolean; onProgress?: (progress: MergeProgress) => void } = {},
): Promise<MergedModel> {
  if (resolve(baseDir) === resolve(outDir)) throw new Error(`merge: the output folder must differ from the base model folder (${baseDir})`);
  const existing = await readdir(outDir).catch(() => null);
  if (existing && existing.length > 0 && !options.overwrite) {
    throw new Error(`merge: ${outDir} already exists and is not empty; choose another folder or pass --force to replace it`);
  }
  const byName = new Map(modules.map((m) => [m.name, m]));
  const byWeight = new Map<string, string>();
  for (const module of adapters.keys()) {
    const info = byName.get(module);
    if (!info) throw new Error(`merge: the adapter has module "${module}", which the base model in ${baseDir} does not have; is it an adapter of another model?`);
    const { weight } = info;
    if (weight !== `${module}.weight`) {
      throw new Error(`merge: ${module} shares its weight ${weight} with another module (tied embeddings); merging would change both. Export the adapter instead (moslora export)`);
    }
    byWeight.set(weight, module);
  }
  const checkpoint = await Checkpoint.open(baseDir);
  const temporary = join(resolve(outDir, '..'), `.${basename(outDir)}.merging-${process.pid}`);
  await rm(temporary, { recursive: true, force: true });
  await mkdir(temporary, { recursive: true });
  const merged: string[] = [];
  try {
    for (const [index, file] of checkpoint.files.entries()) {
      const tensors: TensorToWrite[] = [];
      for (const [name, info] of file.tensors) {
        if (!(WRITABLE_DTYPES as readonly string[]).includes(info.dtype)) {
          throw new Error(`merge: ${file.path}: tensor "${name}" is ${info.dtype}; only F32, F16 and BF16 checkpoints can be merged`);
        }
        let data = await file.readFloat32(name);
        const module = byWeight.get(name);
        if (module) {
          const { spec, weights } = adapters.get(module)!;
          const base = tf.tensor2d(data, info.shape as [number, number]);
          try {
            data = (await takeValues(await mergeWeight({ weight: base, layout: byName.get(module)!.layout }, spec, weights, module))) as Float32Array;
          } finally {
            base.dispose();
          }
          merged.push(module);
        }
        tensors.push({ name, dtype: info.dtype as WritableDtype, shape: info.shape, data });
      }
      await writeSafetensors(join(temporary, basename(file.path)), tensors, file.metadata);
      options.onProgress?.({ shard: basename(file.path), shardIndex: index + 1, shards: checkpoint.files.length, mergedModules: merged.length });
    }
    const missing = [...byWeight.values()].filter((module) => !merged.includes(module));
    if (missing.length) throw new Error(`merge: no weight tensor found for ${missing.map((m) => `${m}.weight`).join(', ')} in ${baseDir}`);
    // Everything else the folder holds (config.json, tokenizer files, the shard index) is copied as is.
    const written = new Set(checkpoint.files.map((f) => basename(f.path)));
    for (const name of await readdir(baseDir)) {
      if (written.has(name) || name.endsWith('.safetensors') || name.endsWith('.bin')) continue;
      if ((await stat(join(baseDir, name))).isFile()) await copyFile(join(baseDir, name), join(temporary, name));
    }
    await rm(outDir, { recursive: true, force: true });
    await rename(temporary, outDir);
    return { outDir, mergedModules: merged, shards: checkpoint.files.length };
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  } finally {
    await checkpoint.close();
  }
}

// The check's input: the same token ids for every check, so reports compare across runs, and no
// tokenizer needed (a model folder need not have one). A stride coprime to power-of-two
// vocabularies spreads them over the embedding table.
const CHECK_TOKENS = 32;
const CHECK_STRIDE = 7919;

/** The merge check's token ids for a vocabulary of `vocab` and at most `positions` positions. */
function checkTokenIds(vocab: number, positions: number): number[] {
  return Array.from({ length: Math.min(CHECK_TOKENS, positions) }, (_, i) => (1 + i * CHECK_STRIDE) % vocab);
}

/**
 * The merge check: one fixed batch through the base model with the adapter and through the
 * merged model; the largest absolute logit difference. Float32 merges land near 1e-6; a merged
 * model stored in BF16 or F16 adds that format's rounding.
 */
export async function mergedLogitDifference(baseDir: string, mergedDir: string, adapters: ReadonlyMap<string, Adapter>): Promise<number> {
  const [base, merged] = await Promise.all([CausalLM.load(baseDir), CausalLM.load(mergedDir)]);
  try {
    const ids = [checkTokenIds(base.config.vocabSize, base.config.maxPositions)];
    return await maxAbsDifference(() => [base.forward(ids, { adapters }), merged.forward(ids)]);
  } finally {
    base.dispose();
    merged.dispose();
  }
}
