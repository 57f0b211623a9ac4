// Merging an adapter into its base model: a new model folder in the base's own layout (same
// shards, tensor names and dtypes), with W′ = W + s·B·M·A computed in float32 for each adapted
// module. Shard by shard, so peak memory is about one shard, not the whole model. Then the
// checks, on one fixed batch: the merged model against base + adapter, and what the base's
// stored precision while the adapter trained (load_in_4bit, …) cost against a float32 base.
import { copyFile, readdir, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { mergeWeight } from '../../kernels/adapter/merge';
import { takeValues } from '../../kernels/backends/read';
import { describeBaseFormats, FLOAT32_BASE, isFloat32Base } from '../../kernels/base/quant';
import { baseFormats, type BasePrecisionKeys } from '../config/schema';
import { Checkpoint } from '../formats/checkpoint';
import { CausalLM, type LoadModelOptions } from '../models/model';
import { readModelLayout, storedMatrices } from '../models/modules';
import { makeFolders } from '../formats/files';
import { checkOutputFolder, replaceOutput, temporaryOutput, type OutputInput } from './outputs';
import { WRITABLE_DTYPES, writeSafetensors, type TensorToWrite, type WritableDtype } from '../formats/safetensors';
import type { LinearModule } from '../models/modules';
import type { Adapter } from '../../kernels/adapter/linear';
import type { QuantisationCost } from '../../protocol/cli';

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
 * `outDir` is checked as every output is (outputs.ts): never the base model or one of `inputs`
 * (the adapter's folder), replaced (`overwrite`) only when an earlier output of ours.
 */
export async function mergeIntoModel(
  baseDir: string,
  outDir: string,
  adapters: ReadonlyMap<string, Adapter>,
  modules: readonly LinearModule[],
  options: { overwrite?: boolean; inputs?: readonly OutputInput[]; onProgress?: (progress: MergeProgress) => void } = {},
): Promise<MergedModel> {
  await checkOutputFolder('merge', outDir, [{ what: 'base model', path: baseDir }, ...(options.inputs ?? [])], options.overwrite === true);
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
  const temporary = temporaryOutput(outDir, 'merge');
  await rm(temporary, { recursive: true, force: true });
  await makeFolders(temporary);
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
    await replaceOutput(temporary, outDir, 'merge');
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
export function checkTokenIds(vocab: number, positions: number): number[] {
  return Array.from({ length: Math.min(CHECK_TOKENS, positions) }, (_, i) => (1 + i * CHECK_STRIDE) % vocab);
}

/**
 * The check batch's logits through the model in `modelDir`, loaded as `options` say, with
 * `adapters`, read back. One model at a time: the model is disposed before this returns.
 */
async function checkLogits(modelDir: string, adapters: ReadonlyMap<string, Adapter>, options: LoadModelOptions = {}): Promise<Float32Array> {
  const model = await CausalLM.load(modelDir, options);
  try {
    const ids = [checkTokenIds(model.config.vocabSize, model.config.maxPositions)];
    return (await takeValues(model.forward(ids, { adapters }))) as Float32Array;
  } finally {
    model.dispose();
  }
}

/** How far the check batch's logits `other` are from `reference`. */
export interface LogitDifference {
  maxAbs: number;
  meanAbs: number;
  /** maxAbs over the largest |logit| of `reference`. */
  relative: number;
}

/** Over every position and token; a non-finite logit on either side makes each figure NaN (or Infinity), not a smaller number. */
export function logitDifference(reference: Float32Array, other: Float32Array): LogitDifference {
  if (reference.length !== other.length) throw new Error(`merge check: ${reference.length} logits against ${other.length}; the two models' vocabularies differ`);
  let maxAbs = 0;
  let sum = 0;
  let largest = 0;
  for (let i = 0; i < reference.length; i++) {
    const d = Math.abs(reference[i]! - other[i]!);
    maxAbs = Math.max(maxAbs, d);
    sum += d;
    largest = Math.max(largest, Math.abs(reference[i]!));
  }
  return { maxAbs, meanAbs: sum / reference.length, relative: maxAbs / largest };
}

/**
 * The merge check: one fixed batch through the base model with the adapter and through the
 * merged model; the largest absolute logit difference. Float32 merges land near 1e-6; a merged
 * model stored in BF16 or F16 adds that format's rounding. `reference`: base + adapter's logits, if computed already.
 */
export async function mergedLogitDifference(
  baseDir: string,
  mergedDir: string,
  adapters: ReadonlyMap<string, Adapter>,
  reference?: Float32Array,
): Promise<number> {
  return logitDifference(reference ?? (await checkLogits(baseDir, adapters)), await checkLogits(mergedDir, new Map())).maxAbs;
}

/** Both checks of a merge. */
export interface MergeCheck {
  /** Largest |logit difference| between base + adapter and the merged model. */
  maxAbsLogitDiff: number;
  quantisation: QuantisationCost;
}

/** mergedLogitDifference and quantisationCost, the float32 base + adapter computed once for both. */
export async function checkMerge(baseDir: string, mergedDir: string, adapters: ReadonlyMap<string, Adapter>, basePrecision: BasePrecisionKeys | undefined): Promise<MergeCheck> {
  const reference = await checkLogits(baseDir, adapters);
  const maxAbsLogitDiff = await mergedLogitDifference(baseDir, mergedDir, adapters, reference);
  return { maxAbsLogitDiff, quantisation: await quantisationCost(baseDir, adapters, basePrecision, reference) };
}

/** Why an adapter without a recorded precision counts as trained on a float32 base. */
export const UNRECORDED_PRECISION =
  'its adapter_config.json records no base precision (moslora.base_precision, which native adapters record and PEFT exports leave out; an adapter from elsewhere, or saved before adapters recorded it), ' +
  'so it is read as trained on a float32 base; merge or export the run\'s native adapter (runs/NAME/adapter) to measure what a quantised base cost';

/**
 * What the base's stored precision while the adapter trained (`basePrecision`, from the adapter's
 * config) cost: the check batch through the base at that precision + the adapter against the base
 * at float32 (its stored values, exactly) + the adapter. Not measured where the precision keeps
 * every weight the model reads as stored (float32; bfloat16 on a BF16 checkpoint), where the
 * adapter records no precision, or where the base model folder cannot be read (`baseDir`
 * undefined: no base model known) or the adapter cannot run on it. `reference`: the float32 base + adapter's logits, if computed already.
 */
export async function quantisationCost(
  baseDir: string | undefined,
  adapters: ReadonlyMap<string, Adapter>,
  basePrecision: BasePrecisionKeys | undefined,
  reference?: Float32Array,
): Promise<QuantisationCost> {
  if (!basePrecision) return { status: 'not-quantised', basePrecision: 'float32', reason: UNRECORDED_PRECISION };
  const formats = baseFormats(basePrecision);
  const described = describeBaseFormats(formats);
  if (isFloat32Base(formats)) {
    return { status: 'not-quantised', basePrecision: described, reason: 'the base was held at float32' };
  }
  const notMeasured = (why: string): QuantisationCost => ({ status: 'not-measured', basePrecision: described, reason: `${why}; name the base model folder (moslora export --model DIR) to measure it` });
  if (baseDir === undefined) return notMeasured('the adapter records no base model');
  let read: Awaited<ReturnType<typeof readModelLayout>>;
  try {
    read = await readModelLayout(baseDir);
  } catch (error) {
    return notMeasured(`the base model cannot be read (${(error as Error).message})`);
  }
  const stored = storedMatrices(read.layout, formats);
  if ([...stored].every(([tensor, { format }]) => keepsStored(format.precision, read.tensors.get(tensor)!.dtype))) {
    const dtypes = [...new Set([...stored.keys()].map((tensor) => read.tensors.get(tensor)!.dtype))].join(', ');
    return { status: 'not-quantised', basePrecision: described, reason: `${described} holds every weight of ${baseDir} as stored (${dtypes})` };
  }
  // what was written (an export) stands whatever the measurement meets: a failed one is a reason, not an error
  let difference: ReturnType<typeof logitDifference>;
  try {
    const full = reference ?? (await checkLogits(baseDir, adapters, { formats: FLOAT32_BASE }));
    difference = logitDifference(full, await checkLogits(baseDir, adapters, { formats }));
  } catch (error) {
    return { status: 'not-measured', basePrecision: described, reason: `the adapter could not run on ${baseDir} (${error instanceof Error ? error.message : String(error)})` };
  }
  return { status: 'measured', basePrecision: described, maxAbsLogitDiff: difference.maxAbs, meanAbsLogitDiff: difference.meanAbs, relativeLogitDiff: difference.relative };
}

/** Whether a tensor stored as `dtype` (a safetensors dtype) keeps its values at `precision`. */
function keepsStored(precision: string, dtype: string): boolean {
  return precision === 'float32' || (precision === 'bfloat16' && dtype === 'BF16') || (precision === 'float16' && dtype === 'F16');
}
