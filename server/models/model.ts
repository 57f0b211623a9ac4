// A causal language model loaded from a Hugging Face folder: frozen weights held once (in the
// native weight store on wasm and cpu, on the GPU at their stored precision on webgpu, else as
// plain tensors), a forward pass to logits, the training loss, and adapters attached per call.

import * as tf from '@tensorflow/tfjs-core';
import { targetLogProbs } from '../../kernels/ops/log-probs';
import { Checkpoint } from '../formats/checkpoint';
import { nearestNames } from '../formats/names';
import { loadModelConfig, type ModelConfig, type ModelShape } from './config';
import { gpt2Forward, gpt2Weights } from './gpt2';
import { weightNormsSquared, type Adapter, type BaseLinear } from '../../kernels/adapter/linear';
import { loadPackedMatrices, type LoadProgress, type RowReader, type WeightRequest } from '../../kernels/base/native-load';
import { NATIVE_BACKENDS } from '../../kernels/base/native-weights';
import { mlasAvailable } from '../../kernels/backends/mlas-matmul';
import { FLOAT32_BASE, isFloat32Base, PackedMatrix, type BaseFormat, type BaseFormats, type PackedMatrixParts } from '../../kernels/base/quant';
import { QUANT_PRODUCT, uploadPacked, type GpuPackedMatrix } from '../../kernels/base/webgpu-quant';
import type { AdapterSet, Embedding, ForwardOptions, LoadedLinear, TokenIds } from './layers';
import { llamaForward, llamaWeights } from './llama';
import { EMBEDDING_NAMES, modelLayout, storedMatrices, type LinearModule } from './modules';

/** Where the frozen weights live: the native weight store (wasm, cpu), packed on the GPU (webgpu), or float32 tensors. */
export type WeightStore = 'native' | 'gpu' | 'tensors';

export interface LoadModelOptions {
  /** The stored formats of the frozen base; float32 unless given. */
  formats?: BaseFormats;
  /** Where the frozen weights live; the native store on wasm and cpu, the GPU on webgpu, tensors on other backends, unless given. */
  store?: WeightStore;
  /** Matrices another thread's model loaded (CausalLM.sharedWeights), mapped instead of read again. */
  shared?: ReadonlyMap<string, PackedMatrixParts>;
  /** Called after every block of rows read into the native store or for the GPU. */
  onProgress?: (progress: LoadProgress) => void;
}

/**
 * The native store where its products run (wasm, cpu, with onnxruntime's MLAS loaded); on webgpu
 * the GPU store where the quantised products are registered, except for an all-float32 base
 * (`formats`), which packing would not shrink and which tfjs's own matrix product multiplies;
 * tensors elsewhere.
 */
export function defaultStore(backend = tf.getBackend(), formats?: BaseFormats): WeightStore {
  if ((NATIVE_BACKENDS as readonly string[]).includes(backend) && mlasAvailable()) return 'native';
  if (backend !== 'webgpu' || tf.getKernel(QUANT_PRODUCT, backend) === undefined) return 'tensors';
  return formats && isFloat32Base(formats) ? 'tensors' : 'gpu';
}

/**
 * Reads groups of weights in order, each group at its format, and hands each group's matrices to
 * `take` as soon as they are read; `onProgress` sees one progress over all the groups.
 */
async function loadGroups(
  reader: RowReader,
  groups: readonly { format: BaseFormat; requests: readonly WeightRequest[] }[],
  onProgress: ((progress: LoadProgress) => void) | undefined,
  take: (matrices: Map<string, PackedMatrix>) => void,
): Promise<void> {
  const tensors = groups.reduce((n, g) => n + g.requests.length, 0);
  const bytesTotal = groups.reduce((sum, g) => sum + g.requests.reduce((n, r) => n + reader.info(r.tensor).byteLength, 0), 0);
  let [done, bytesRead] = [0, 0];
  for (const { format, requests } of groups) {
    const progress = onProgress && ((p: LoadProgress) => onProgress({ ...p, done: done + p.done, tensors, bytesRead: bytesRead + p.bytesRead, bytesTotal }));
    const loaded = await loadPackedMatrices(reader, requests, format, progress ? { onProgress: progress } : {});
    take(loaded);
    done += loaded.size;
    bytesRead += [...loaded.keys()].reduce((sum, tensor) => sum + reader.info(tensor).byteLength, 0);
  }
}

/** Token ids, one row per sequence, all rows the same length. */
export type TokenBatch = readonly (readonly number[])[];

/** Labels that do not count towards the loss (prompt tokens, padding), as in transformers. */
export const IGNORE_INDEX = -100;

function checkBatch(what: string, batch: TokenBatch, valid: (id: number) => boolean, allowed: string): [number, number] {
  const B = batch.length;
  const T = batch[0]?.length ?? 0;
  if (B === 0 || T === 0) throw new Error(`${what}: expected a non-empty batch [B, T] of token ids, got ${B} rows of ${T}`);
  batch.forEach((row, b) => {
    if (row.length !== T) throw new Error(`${what}: row ${b} has ${row.length} tokens but row 0 has ${T}; pad the rows to one length`);
    const bad = row.findIndex((id) => !valid(id));
    if (bad >= 0) throw new Error(`${what}[${b}][${bad}] = ${row[bad]} is not ${allowed}`);
  });
  return [B, T];
}

/**
 * For each position t < T−1, log p(labels[b][t+1] | tokens ≤ t), zero where that label is
 * IGNORE_INDEX ([B, T−1]), and how many labels count (a scalar).
 */
export function labelLogProbs(logits: tf.Tensor3D, labels: tf.Tensor2D): { logProbs: tf.Tensor2D; counted: tf.Scalar } {
  return tf.tidy(() => {
    const [B, T, V] = logits.shape;
    // Every position t predicts labels[b][t+1]; the last one has nothing to predict. Scoring all
    // T positions (the last with weight 0) uses the logits as they are, without a shifted copy.
    const next = tf.reshape(tf.concat([tf.slice(labels, [0, 1], [B, T - 1]), tf.fill([B, 1], IGNORE_INDEX, 'int32')], 1), [-1]); // (B·T)
    const counted = tf.notEqual(next, IGNORE_INDEX);
    const weights = tf.cast(counted, 'float32');
    const picked = targetLogProbs(tf.reshape(logits, [B * T, V]), tf.where(counted, next, tf.zerosLike(next)) as tf.Tensor1D); // (B·T)
    const logProbs = tf.slice(tf.reshape(tf.mul(picked, weights), [B, T]), [0, 0], [B, T - 1]) as tf.Tensor2D;
    return { logProbs, counted: tf.sum(weights) as tf.Scalar };
  });
}

/**
 * Mean cross-entropy of predicting token t+1 from tokens ≤ t over the labels that are not
 * IGNORE_INDEX (labels[b][t+1] is the target of logits[b][t]), as transformers computes it:
 * no label to predict gives NaN.
 */
export function causalLmLoss(logits: tf.Tensor3D, labels: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const { logProbs, counted } = labelLogProbs(logits, labels);
    return tf.div(tf.neg(tf.sum(logProbs)), counted) as tf.Scalar;
  });
}

/** The engine's forward options: dropout while training, gradient checkpointing. */
export type LogitsOptions = Pick<ForwardOptions, 'dropoutSeed' | 'firstSequence' | 'checkpoint'> & { training: boolean };

/** What the engine needs from a loaded causal language model: CausalLM, or a test's small model. */
export interface EngineModel {
  readonly linearModules: readonly LinearModule[];
  readonly parameterCount: number;
  /** Width, depth, heads and vocabulary, for the memory estimate; absent: unknown. */
  readonly shape?: ModelShape;
  /** Bytes of its base in the native weight store, outside the heap; absent: none, the base is tensors or on the GPU. */
  readonly nativeBytes?: number;
  /** Logits [B, T, V] for token ids [B, T] (rows of numbers: a table on the GPU checks them on the host); adapters by module name; dropout only while training. */
  logits(inputIds: TokenBatch, adapters: ReadonlyMap<string, Adapter>, options: LogitsOptions): tf.Tensor3D;
  /** A linear module's frozen weight as the forward pass uses it (a DoRA adapter's magnitude starts from its norms). */
  base(module: string): BaseLinear;
}

export class CausalLM implements EngineModel {
  private readonly byName: ReadonlyMap<string, LinearModule>;

  private constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    /** Every linear module, in forward order, with its [d_out, d_in]. */
    readonly linearModules: readonly LinearModule[],
    /** Elements of every tensor the model reads, a tied embedding counted once. */
    readonly parameterCount: number,
    /** The frozen weights by stored tensor name, each loaded once (linear weights held [d_in, d_out]). */
    private readonly tensors: ReadonlyMap<string, tf.Tensor>,
    private readonly linears: ReadonlyMap<string, LoadedLinear>,
    private readonly run: (inputIds: TokenIds, options: ForwardOptions) => tf.Tensor3D,
    /** The native weight store's matrices by tensor name (empty where the weights are elsewhere). */
    private readonly packed: ReadonlyMap<string, PackedMatrix>,
    /** The matrices on the GPU by tensor name (empty where the weights are elsewhere). */
    private readonly gpu: ReadonlyMap<string, GpuPackedMatrix>,
    /** The stored formats of the frozen base. */
    readonly formats: BaseFormats,
  ) {
    this.byName = new Map(linearModules.map((m) => [m.name, m]));
  }

  /**
   * Reads config.json and every weight the architecture needs, frozen. Where the weights live
   * (LoadModelOptions.store, defaultStore): on wasm and cpu the linear weights, the embedding and
   * lm_head go to the native weight store at the formats asked for (float32 unless given), read a
   * block of rows at a time; on webgpu a base below float32 goes to the GPU at those formats,
   * read the same way a tensor at a time, each uploaded as soon as it is read; elsewhere every
   * weight is a float32 tensor (of the stored precision's values). Norms, biases and position
   * tables are float32 tensors always.
   */
  static async load(modelDir: string, options: LoadModelOptions = {}): Promise<CausalLM> {
    const config = await loadModelConfig(modelDir);
    const checkpoint = await Checkpoint.open(modelDir);
    const formats = options.formats ?? FLOAT32_BASE;
    const store = options.store ?? defaultStore(undefined, formats);
    const tensors = new Map<string, tf.Tensor>();
    const gpu = new Map<string, GpuPackedMatrix>();
    try {
      const layout = modelLayout(config, checkpoint.tensors, modelDir);
      const embeddingTensor = layout.parameters.find((p) => (EMBEDDING_NAMES as readonly string[]).includes(p.name))!.tensor;
      const stored = storedMatrices(layout, formats);
      const formatOf = (tensor: string) => stored.get(tensor)!.format;
      const quantised = !isFloat32Base(formats);
      // Packed matrices, [d_out, d_in] (an embedding [vocab, C]): shared by the caller, or read.
      const packed = new Map<string, PackedMatrix>();
      const requests = [...layout.linears.map((m): WeightRequest => ({ tensor: m.weight, layout: m.layout })), { tensor: embeddingTensor, layout: 'out_in' as const }]
        .filter((r, i, all) => all.findIndex((o) => o.tensor === r.tensor) === i);
      if (store === 'gpu') {
        if (options.shared?.size) throw new Error(`${modelDir}: another thread's matrices map into the native weight store, not onto the GPU; load with store 'native'`);
        // a tensor at a time, each matrix uploaded and let go before the next is read
        const each = requests.map((r) => ({ format: formatOf(r.tensor), requests: [r] }));
        await loadGroups(checkpoint, each, options.onProgress, (loaded) => {
          for (const [tensor, matrix] of loaded) gpu.set(tensor, uploadPacked(matrix));
        });
      } else if (store === 'native' || quantised) {
        for (const [tensor, parts] of options.shared ?? []) packed.set(tensor, PackedMatrix.fromParts(parts));
        const missing = requests.filter((r) => !packed.has(r.tensor) && (store === 'native' || formatOf(r.tensor).precision !== 'float32'));
        const byFormat = new Map<BaseFormat, WeightRequest[]>();
        for (const r of missing) byFormat.set(formatOf(r.tensor), [...(byFormat.get(formatOf(r.tensor)) ?? []), r]);
        await loadGroups(checkpoint, [...byFormat].map(([format, group]) => ({ format, requests: group })), options.onProgress, (loaded) => {
          for (const [tensor, matrix] of loaded) packed.set(tensor, matrix);
        });
      }
      const native = store === 'native';
      const onGpu = store === 'gpu';
      // tfjs-wasm multiplies fast (XNNPACK) only without transpose flags: x·W with W held
      // [d_in, d_out] runs about 10× faster than x·Wᵀ with W held [d_out, d_in]. So every linear
      // weight held as a tensor is held 'in_out': nn.Linear weights are transposed once here.
      const transposed = new Set(layout.linears.filter((m) => m.layout === 'out_in').map((m) => m.weight));
      const byName = new Map<string, tf.Tensor>();
      for (const { name, tensor, shape } of layout.parameters) {
        if ((native || onGpu) && stored.has(tensor)) continue;
        const matrix = packed.get(tensor);
        // a dequantised matrix is [d_out, d_in] whatever the checkpoint's layout
        const value = matrix ? tf.tidy(() => {
          const values = new Float32Array(matrix.rows * matrix.cols);
          matrix.readRows(0, matrix.rows, values);
          const rows = tf.tensor2d(values, [matrix.rows, matrix.cols]);
          return tensor === embeddingTensor && !transposed.has(tensor) ? rows : tf.transpose(rows);
        }) : await (async () => {
          const stored = tf.tensor(await checkpoint.readFloat32(tensor), shape, 'float32');
          const held = transposed.has(tensor) ? tf.transpose(stored) : stored;
          if (held !== stored) stored.dispose();
          return held;
        })();
        tensors.set(tensor, value);
        byName.set(name, value);
      }
      const linears = new Map(
        layout.linears.map((m, index): [string, LoadedLinear] => {
          const bias = m.bias !== null ? { bias: tensors.get(m.bias) as tf.Tensor1D } : {};
          const base: BaseLinear = native ? { packed: packed.get(m.weight)!, ...bias } : onGpu ? { gpu: gpu.get(m.weight)!, ...bias } : { weight: tensors.get(m.weight) as tf.Tensor2D, ...bias, layout: 'in_out' };
          return [m.name, { name: m.name, index, base }];
        }),
      );
      const storedName = new Map(layout.parameters.map((p) => [p.name, p.tensor]));
      const tensor = (name: string) => byName.get(name)!;
      const module = (name: string) => linears.get(name)!;
      // A tied embedding is lm_head's weight, so as a tensor it is held [C, vocab] too.
      const embedding = (name: string): Embedding =>
        native ? { packed: packed.get(storedName.get(name)!)! } : onGpu ? { gpu: gpu.get(storedName.get(name)!)! } : { table: tensor(name) as tf.Tensor2D, byColumns: transposed.has(storedName.get(name)!) };
      let run: (inputIds: TokenIds, options: ForwardOptions) => tf.Tensor3D;
      if (config.family === 'llama') {
        const weights = llamaWeights(config, { tensor, module, embedding });
        run = (ids, options) => llamaForward(config, weights, ids, options);
      } else {
        const weights = gpt2Weights(config, { tensor, module, embedding });
        run = (ids, options) => gpt2Forward(config, weights, ids, options);
      }
      const parameterCount = layout.parameters.reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
      return new CausalLM(modelDir, config, layout.linears, parameterCount, tensors, linears, run, native ? packed : new Map(), gpu, formats);
    } catch (error) {
      tf.dispose([...tensors.values()]);
      for (const matrix of gpu.values()) matrix.dispose();
      throw error;
    } finally {
      await checkpoint.close();
    }
  }

  /** The native store's matrices by tensor name, as memory another thread can map (LoadModelOptions.shared); empty where the weights are tensors. */
  sharedWeights(): Map<string, PackedMatrixParts> {
    return new Map([...this.packed].map(([tensor, matrix]) => [tensor, matrix.parts]));
  }

  /** Bytes of the native weight store (outside the wasm heap and V8's); undefined where the weights are elsewhere. */
  get nativeBytes(): number | undefined {
    return this.packed.size === 0 ? undefined : [...this.packed.values()].reduce((sum, m) => sum + m.byteLength, 0);
  }

  /** Bytes of the base's matrices on the GPU (codes and scales); undefined where the weights are elsewhere. */
  get gpuBytes(): number | undefined {
    return this.gpu.size === 0 ? undefined : [...this.gpu.values()].reduce((sum, m) => sum + m.byteLength, 0);
  }

  /** The module's [d_out, d_in] and layout; throws, naming the nearest modules, for an unknown name. */
  module(name: string): LinearModule {
    const module = this.byName.get(name);
    if (!module) {
      const nearest = nearestNames(name, this.byName.keys()).map((n) => JSON.stringify(n));
      throw new Error(`${this.dir}: no linear module ${JSON.stringify(name)}; nearest: ${nearest.join(', ')}`);
    }
    return module;
  }

  /**
   * A linear module's frozen weight as the forward pass uses it (held in_out), with ‖W_i‖² of each
   * output feature, which DoRA reads at every call: computed on the first request and kept with
   * the weights.
   */
  base(name: string): BaseLinear {
    this.module(name);
    const { base } = this.linears.get(name)!;
    base.weightNormsSquared ??= tf.keep(weightNormsSquared(base));
    return base;
  }

  /**
   * inputIds [B, T] → logits [B, T, vocab]. Ids given as arrays are checked against the
   * vocabulary; an int32 tensor is used as it is, except where the embedding table is on the GPU,
   * which takes the ids as arrays only. With a cache, positions continue after the cached tokens.
   */
  forward(inputIds: TokenBatch | tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    for (const [name, adapter] of options.adapters ?? []) {
      this.module(name);
      if (adapter.spec.useDora) this.base(name);
    }
    return tf.tidy(() => {
      const ids = inputIds instanceof tf.Tensor ? inputIds : this.idsTensor('input_ids', inputIds, false);
      if (ids.rank !== 2 || ids.dtype !== 'int32') {
        throw new Error(`input_ids: expected an int32 tensor [B, T], got ${ids.dtype} [${ids.shape.join(', ')}]`);
      }
      const values = inputIds instanceof tf.Tensor ? null : Int32Array.from(inputIds.flat());
      const positions = (options.cache?.length ?? 0) + ids.shape[1];
      if (this.config.family === 'gpt2' && positions > this.config.maxPositions) {
        throw new Error(`input_ids: ${positions} positions exceed n_positions = ${this.config.maxPositions} of ${this.dir}; shorten the sequence`);
      }
      return this.run({ tensor: ids, values }, options);
    });
  }

  /** Width, depth, heads and vocabulary (EngineModel: for the memory estimate). */
  get shape(): ModelShape {
    const c = this.config;
    return { hidden: c.hiddenSize, layers: c.numLayers, heads: c.numHeads, vocab: c.vocabSize };
  }

  /** The training engine's entry point (EngineModel): forward with an adapter set. */
  logits(inputIds: TokenBatch, adapters: AdapterSet, options: LogitsOptions): tf.Tensor3D {
    return this.forward(inputIds, { adapters, ...options });
  }

  /**
   * Mean cross-entropy of predicting token t+1 from tokens ≤ t, over the labels that are not
   * IGNORE_INDEX: labels[b][t+1] is the target of logits[b][t], as in transformers. Labels given
   * as a tensor with nothing to predict give NaN, as in transformers; given as arrays, an error.
   */
  loss(inputIds: TokenBatch | tf.Tensor2D, labels: TokenBatch | tf.Tensor2D, options: ForwardOptions = {}): tf.Scalar {
    return tf.tidy(() => {
      const targets = labels instanceof tf.Tensor ? labels : this.idsTensor('labels', labels, true);
      const logits = this.forward(inputIds, options); // (B, T, V)
      const [B, T] = logits.shape;
      if (targets.shape[0] !== B || targets.shape[1] !== T) {
        throw new Error(`labels: shape [${targets.shape.join(', ')}] does not match input_ids [${B}, ${T}]`);
      }
      return causalLmLoss(logits, targets);
    });
  }

  /** Frees the weights (on the GPU too); the model cannot run afterwards. */
  dispose(): void {
    tf.dispose([...this.tensors.values()]);
    for (const matrix of this.gpu.values()) matrix.dispose();
    for (const { base } of this.linears.values()) base.weightNormsSquared?.dispose();
  }

  private idsTensor(what: string, batch: TokenBatch, labels: boolean): tf.Tensor2D {
    const V = this.config.vocabSize;
    const valid = (id: number) => (labels && id === IGNORE_INDEX) || (Number.isInteger(id) && id >= 0 && id < V);
    const [B, T] = checkBatch(what, batch, valid, `${labels ? '-100 or ' : ''}a token id in [0, ${V})`);
    if (labels && batch.every((row) => row.slice(1).every((id) => id === IGNORE_INDEX))) {
      throw new Error(`labels: every label after the first position is ${IGNORE_INDEX}, so there is nothing to predict`);
    }
    return tf.tensor2d(batch.flat(), [B, T], 'int32');
  }
}
