// Run by test/integration/webgpu-base.test.ts in a process of its own (on SwiftShader): the
// shipped tiny model with its frozen base on the GPU (server/models/model.ts, store 'gpu'),
// trained a few steps at each precision and once with float32 tensors, every step on the same
// BATCH examples of the tiny task (so the loss of each step follows the last); the logits of a fixed
// batch at the precisions the test compares with the wasm native store; what the GPU store holds
// and what dispose gives back. Prints one JSON line (Result).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { QUANT_GATHER, QUANT_PRODUCT } from '../../kernels/base/webgpu-quant';
import { FLOAT32_BASE, type BasePrecision } from '../../kernels/base/quant';
import { CausalLM, defaultStore, type LoadModelOptions, type TokenBatch } from '../../server/models/model';
import { ModelTokenizer } from '../../server/models/tokenizer';
import { baseStoreTrainLosses, formatsAt } from './base-store-runs';
import { TINY_MODEL } from './tiny-models';
import { runHelper } from './webgpu-start';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');
/** The batch whose logits the test compares with the wasm native store's. */
const LOGIT_IDS: TokenBatch = [[5, 17, 300, 2, 900, 41, 7, 1000]];
const NORMS_MODULE = 'model.layers.1.mlp.down_proj';
const BATCH = 4;

export interface Args {
  steps: number;
  /** Precisions trained with the base on the GPU. */
  precisions: BasePrecision[];
  /** Precisions whose logits of LOGIT_IDS come back. */
  logits: BasePrecision[];
}

export interface Result {
  /** defaultStore on webgpu for a quantised base, and for an all-float32 one. */
  store: { quantised: string; float32: string };
  /** Train losses by run: 'tensors' (float32 tensors), or a precision with the base on the GPU. */
  losses: Record<string, number[]>;
  /** The model folder, and the batch whose logits come back. */
  model: string;
  ids: TokenBatch;
  /** Logits of `ids` by precision, the base on the GPU. */
  logits: Record<string, number[]>;
  /** ‖W_i‖² of NORMS_MODULE's rows at nf4 (what DoRA reads), the base on the GPU. */
  norms: { module: string; values: number[] };
  /** The nf4 model: its GPU bytes, the bytes of tensors it holds, and those left after dispose. */
  memory: { gpuBytes: number | undefined; tensorBytes: number; leftAfterDispose: number };
  /** Kernels one forward ran: the quantised products and gathers. */
  kernels: { products: number; gathers: number };
  /** What forward said to a tensor of ids, and to an id past the vocabulary. */
  refusals: { tensor: string; outOfRange: string };
}

/** The message f throws, or '' (its tensor disposed). */
function refusal(f: () => tf.Tensor): string {
  try {
    tf.dispose(f());
    return '';
  } catch (error) {
    return (error as Error).message;
  }
}

runHelper(async () => {
  const args = JSON.parse(process.argv[2]!) as Args;
  const backend = await selectBackend('webgpu');
  const dir = await mkdtemp(join(tmpdir(), 'moslora-webgpu-base-'));
  try {
    const tokenizer = await ModelTokenizer.load(TINY_MODEL);
    const examples = (await readFile(join(EXAMPLES, 'tiny-task', 'train.jsonl'), 'utf8')).split('\n').slice(0, BATCH);
    await writeFile(join(dir, 'train.jsonl'), `${examples.join('\n')}\n`);
    // the same 4 examples every step, at a rate that makes each step's loss fall
    const trainLosses = (name: string, load: LoadModelOptions) =>
      baseStoreTrainLosses({ dir, backend, tokenizer, name, load, train: join(dir, 'train.jsonl'), steps: args.steps, batch: BATCH, learningRate: 1e-2, warmup: 0 });
    const losses: Result['losses'] = { tensors: await trainLosses('tensors', { store: 'tensors' }) };
    for (const precision of args.precisions) {
      losses[precision] = await trainLosses(precision, { store: 'gpu', formats: precision === 'float32' ? FLOAT32_BASE : formatsAt(precision) });
    }
    const logits: Result['logits'] = {};
    for (const precision of args.logits) {
      const model = await CausalLM.load(TINY_MODEL, { store: 'gpu', formats: formatsAt(precision) });
      const y = model.forward(LOGIT_IDS);
      logits[precision] = Array.from(await y.data());
      tf.dispose(y);
      model.dispose();
    }
    const before = tf.memory().numBytes;
    const model = await CausalLM.load(TINY_MODEL, { formats: formatsAt('nf4') });
    const tensorBytes = tf.memory().numBytes - before;
    const profile = await tf.profile(async () => {
      const y = model.forward(LOGIT_IDS);
      await y.data();
      y.dispose();
    });
    const count = (name: string) => profile.kernels.filter((k) => k.name === name).length;
    const ids = tf.tensor2d([[1, 2]], undefined, 'int32');
    const refusals = { tensor: refusal(() => model.forward(ids)), outOfRange: refusal(() => model.forward([[1, model.config.vocabSize]])) };
    ids.dispose();
    const norms = { module: NORMS_MODULE, values: Array.from(await model.base(NORMS_MODULE).weightNormsSquared!.data()) };
    const gpuBytes = model.gpuBytes;
    model.dispose();
    const result: Result = {
      store: { quantised: defaultStore(undefined, formatsAt('nf4')), float32: defaultStore(undefined, FLOAT32_BASE) },
      losses,
      model: TINY_MODEL,
      ids: LOGIT_IDS,
      logits,
      norms,
      memory: { gpuBytes, tensorBytes, leftAfterDispose: tf.memory().numBytes - before },
      kernels: { products: count(QUANT_PRODUCT), gathers: count(QUANT_GATHER) },
      refusals,
    };
    console.log(JSON.stringify(result));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
