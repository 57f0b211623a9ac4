// The adapter spec (kernels/adapter/spec.ts): its defaults, each bad value refused with the allowed
// ones, the trainable parameter count, and factors or inputs of the wrong shape named.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import {
  AdapterConfigError,
  adapterScaling,
  resolveAdapterSpec,
  trainableParameterCount,
  type AdapterSpec,
} from '../../kernels/adapter/spec';
import { selectBackend } from '../../kernels/backends/backend';
import { initAdapterWeights } from '../../kernels/adapter/init';
import { adaptedLinear } from '../../kernels/adapter/linear';

const good: AdapterSpec = { method: 'moslora', dIn: 64, dOut: 32, r: 8, alpha: 16 };

function rejects(spec: Partial<AdapterSpec>, argument: string, ...fragments: string[]): void {
  assert.throws(
    () => resolveAdapterSpec({ ...good, ...spec } as AdapterSpec),
    (error: unknown) => {
      assert.ok(error instanceof AdapterConfigError, `expected AdapterConfigError, got ${String(error)}`);
      assert.equal(error.argument, argument);
      for (const fragment of fragments) assert.match(error.message, new RegExp(fragment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      return true;
    },
  );
}

describe('adapter spec validation', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('fills the defaults: kaiming mixer, zero B, no dropout, α/r scaling', () => {
    const spec = resolveAdapterSpec(good);
    assert.equal(spec.mixerInit, 'kaiming');
    assert.equal(spec.bInit, 'zeros');
    assert.equal(spec.dropout, 0);
    assert.equal(adapterScaling(spec), 2);
    assert.equal(adapterScaling(resolveAdapterSpec({ ...good, useRslora: true })), 16 / Math.sqrt(8));
  });

  it('rejects rank 0 and ranks above min(d_in, d_out), naming the allowed range', () => {
    rejects({ r: 0 }, 'r', 'positive integer', 'got 0');
    rejects({ r: 2.5 }, 'r', 'positive integer');
    rejects({ r: 33 }, 'r', 'min(d_in, d_out)', '1..32');
  });

  it('rejects unknown methods and initialisers, listing the allowed values', () => {
    rejects({ method: 'dora' as AdapterSpec['method'] }, 'method', '"dora"', 'lora, moslora, moslora-fixed, linchain');
    rejects({ mixerInit: 'random' as AdapterSpec['mixerInit'] }, 'mixer_init', 'kaiming, orthogonal, identity, zeros');
    rejects({ bInit: 'ones' as AdapterSpec['bInit'] }, 'b_init', 'zeros, kaiming');
  });

  it('rejects bad alpha, dropout, chain length and dimensions', () => {
    rejects({ alpha: 0 }, 'alpha', 'positive number');
    rejects({ dropout: 1 }, 'dropout', '[0, 1)');
    rejects({ method: 'linchain', chainLength: 1 }, 'chain_length', '≥ 2');
    rejects({ dIn: -4 }, 'd_in', 'positive integer');
  });

  it('rejects configurations that can never train, and says why', () => {
    rejects({ mixerInit: 'zeros' }, 'mixer_init', 'zero gradients', "b_init to 'kaiming'");
    rejects({ method: 'linchain', mixerInit: 'zeros' }, 'mixer_init', 'zero gradients');
    rejects({ method: 'moslora-fixed', mixerInit: 'zeros', bInit: 'kaiming' }, 'mixer_init', 'zero forever');
    assert.doesNotThrow(() => resolveAdapterSpec({ ...good, mixerInit: 'zeros', bInit: 'kaiming' }));
    assert.doesNotThrow(() => resolveAdapterSpec({ ...good, method: 'lora', mixerInit: 'zeros' }), 'LoRA has no mixer');
  });

  it('counts trainable parameters: r(d_in + d_out) plus r² per learned mixer', () => {
    assert.equal(trainableParameterCount(resolveAdapterSpec({ ...good, method: 'lora' })), 8 * 96);
    assert.equal(trainableParameterCount(resolveAdapterSpec(good)), 8 * 96 + 64);
    assert.equal(trainableParameterCount(resolveAdapterSpec({ ...good, method: 'moslora-fixed' })), 8 * 96);
    assert.equal(trainableParameterCount(resolveAdapterSpec({ ...good, method: 'linchain', chainLength: 3 })), 8 * 96 + 3 * 64);
  });

  it('rejects factors and inputs whose shapes do not match, naming the argument and both shapes', () => {
    const spec = resolveAdapterSpec(good);
    const weights = initAdapterWeights(spec, 1);
    const base = { weight: tf.zeros([32, 64]) as tf.Tensor2D, layout: 'out_in' as const };
    assert.throws(() => adaptedLinear(tf.zeros([3, 63]), base, { spec, weights }), /x: last dimension 63 does not match the layer's d_in = 64/);
    assert.throws(
      () => adaptedLinear(tf.zeros([3, 64]), base, { spec, weights: { ...weights, A: tf.zeros([8, 65]) as tf.Tensor2D } }),
      /A: shape \[8, 65\] does not match the expected \[8, 64\]/,
    );
    assert.throws(() => adaptedLinear(tf.zeros([3, 64]), base, { spec, weights: { ...weights, mixers: [] } }), /mixers: method 'moslora' stores 1 mixer\(s\), got 0/);
    const wrongBase = { weight: tf.zeros([64, 32]) as tf.Tensor2D, layout: 'out_in' as const };
    assert.throws(() => adaptedLinear(tf.zeros([3, 32]), wrongBase, { spec, weights }), /base: .*64×32 .*adapter was made for 32×64/);
  });
});
