// Which settings tell runs apart (webview/lib/hyperparameters.ts): the keys of their config.yaml
// whose values differ, and how Compare shows a value.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { differingKeys, valueText, type Configured } from '../../webview/lib/hyperparameters';

describe('the settings that differ between runs', () => {
  it('lists the keys whose values differ, in the configs\' order; a key one run lacks differs', () => {
    const runs: Configured[] = [
      { hyperparameters: { method: 'moslora', r: 8, 'training.learning_rate': 0.003, mixer_init: 'kaiming', seed: 42 } },
      { hyperparameters: { method: 'lora', r: 8, 'training.learning_rate': 0.003, seed: 42 } },
      { hyperparameters: undefined },
    ];
    assert.deepEqual(differingKeys(runs), ['method', 'mixer_init']);
    assert.deepEqual(differingKeys([runs[0]!, runs[0]!]), []);
    assert.deepEqual(differingKeys([runs[0]!, runs[2]!]), [], 'one config: nothing to compare');
    assert.deepEqual(differingKeys([{ hyperparameters: { 'data.eval': null } }, { hyperparameters: { 'data.eval': 'null' } }]), [], 'null and "null" read the same');
    assert.deepEqual(differingKeys([{ hyperparameters: { r: 8 } }, { hyperparameters: { r: '8' } }]), []);
    assert.equal(valueText(runs[1]!.hyperparameters, 'mixer_init'), '–');
    assert.equal(valueText(runs[0]!.hyperparameters, 'seed'), '42');
    assert.equal(valueText(runs[0]!.hyperparameters, 'toString'), '–', 'an inherited name is not a key');
  });
});
