// A small causal model for engine tests: frozen embedding → adapted projection (tanh) →
// adapted output head. Two linear modules, one stored [out, in] and one [in, out], so both
// layouts go through training, checkpoints and exports.
import * as tf from '@tensorflow/tfjs-core';
import { adaptedLinear, type Adapter, type TensorBaseLinear } from '../../kernels/adapter/linear';
import { tfSeed } from '../../kernels/adapter/seed';
import type { DataTokenizer } from '../../server/engine/data';
import type { EngineModel, TokenBatch } from '../../server/models/model';
import type { LinearModule } from '../../server/models/modules';
import { linearModule } from './modules';

export const ALPHABET = ' abcdefghijklmnopqrstuvwxyz.?';

export class ToyModel implements EngineModel {
  readonly linearModules: LinearModule[];
  readonly parameterCount: number;
  /** Forward passes after which logits turn to NaN (to test the NaN guard); Infinity: never. */
  poisonAfter = Infinity;
  private calls = 0;
  private readonly embed: tf.Tensor2D;
  private readonly proj: TensorBaseLinear;
  private readonly head: TensorBaseLinear;

  constructor(readonly vocab: number, readonly dim: number, seed = 0) {
    this.embed = tf.keep(tf.randomNormal([vocab, dim], 0, 1, 'float32', tfSeed(seed)));
    this.proj = { weight: tf.keep(tf.randomNormal([dim, dim], 0, 0.3, 'float32', tfSeed(seed + 1))), layout: 'out_in' };
    this.head = { weight: tf.keep(tf.randomNormal([dim, vocab], 0, 0.3, 'float32', tfSeed(seed + 2))), layout: 'in_out' };
    this.linearModules = [
      linearModule('model.layers.0.proj', dim, dim, 'out_in'),
      linearModule('model.head', dim, vocab, 'in_out'),
    ];
    this.parameterCount = vocab * dim * 2 + dim * dim;
  }

  base(module: string): TensorBaseLinear {
    if (module === 'model.layers.0.proj') return this.proj;
    if (module === 'model.head') return this.head;
    throw new Error(`the toy model has no linear module ${module}`);
  }

  logits(inputIds: TokenBatch, adapters: ReadonlyMap<string, Adapter>, options: { training: boolean; dropoutSeed?: number }): tf.Tensor3D {
    this.calls++;
    return tf.tidy(() => {
      const h = tf.gather(this.embed, tf.tensor2d(inputIds as number[][], undefined, 'int32')) as tf.Tensor as tf.Tensor3D; // [B, T, d]
      const forward = { training: options.training, ...(options.dropoutSeed === undefined ? {} : { dropoutSeed: options.dropoutSeed }) };
      const x = tf.tanh(adaptedLinear(h, this.proj, adapters.get('model.layers.0.proj') ?? null, forward));
      const logits = adaptedLinear(x, this.head, adapters.get('model.head') ?? null, forward) as tf.Tensor3D;
      return this.calls > this.poisonAfter ? (tf.mul(logits, Number.NaN) as tf.Tensor3D) : logits;
    });
  }
}

/** One token per character of ALPHABET; 0 is padding, 1 BOS, 2 EOS. */
export const toyTokenizer: DataTokenizer = {
  encode: (text) => [...text.toLowerCase()].map((c) => ALPHABET.indexOf(c)).filter((i) => i >= 0).map((i) => i + 3),
  bosTokenId: 1,
  eosTokenId: 2,
  padTokenId: 0,
  applyChatTemplate: () => {
    throw new Error('the toy tokenizer has no chat template');
  },
};

export const TOY_VOCAB = ALPHABET.length + 3;
