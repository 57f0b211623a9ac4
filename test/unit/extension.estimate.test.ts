// The Estimate lens's result in words (extension/estimate.ts), from a fixed estimate.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeEstimate } from '../../extension/estimate';

describe('the estimate in words', () => {
  it('gives LoRA and MoSLoRA side by side, their share of the base, and the steps', () => {
    const text = describeEstimate({
      configPath: '/ws/tiny.moslora.yaml', model: '/ws/examples/tiny-model', architecture: 'LlamaForCausalLM', method: 'moslora', r: 8, modules: 20,
      baseParameters: 722_048, lora: 45_056, moslora: 46_336, trainable: 46_336, trainExamples: 1500, batchSize: 8, gradientAccumulation: 1, totalSteps: 60,
    });
    assert.match(text, /LoRA trains 45,056 parameters \(6\.24 % of the base\)/);
    assert.match(text, /MoSLoRA trains 46,336 \(6\.42 % of the base\): its mixers add 1,280, \+2\.841 % over LoRA/);
    assert.match(text, /1,500 training examples, batch 8 × 1 accumulation: 60 optimizer steps/);
  });
});
