// "MoSLoRA: A/B Test" as the server runs it (server/tasks/ab.ts): the `moslora ab` command line
// for the editor's request, and the requests the CLI would refuse, refused first with the reason.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { abArgs } from '../../server/tasks/ab';
import { MAX_AB_SEEDS } from '../../protocol/editor';

describe('the A/B command line', () => {
  it('passes the methods in order (the baseline first), the seeds, the backend override and the runs folder', () => {
    assert.deepEqual(abArgs('/ws/tiny.moslora.yaml', { methods: ['lora', 'moslora'], seeds: 3 }), ['ab', '/ws/tiny.moslora.yaml', '--methods', 'lora,moslora', '--seeds', '3', '--json']);
    assert.deepEqual(abArgs('/ws/t.moslora.yaml', { methods: ['moslora', 'linchain', 'lora'], seeds: 5, backend: 'wasm', runsDir: '/out' }), [
      'ab', '/ws/t.moslora.yaml', '--methods', 'moslora,linchain,lora', '--seeds', '5', '--backend', 'wasm', '--runs-dir', '/out', '--json',
    ]);
    assert.ok(!abArgs('/c', { methods: ['lora', 'moslora'], seeds: 2, backend: 'auto' }).includes('--backend'), "auto leaves it to the config's backend");
  });

  it('refuses one method, a method twice, an unknown method and seeds out of range', () => {
    assert.throws(() => abArgs('/c', { methods: ['lora'], seeds: 3 }), /at least two methods/);
    assert.throws(() => abArgs('/c', { methods: ['lora', 'lora'], seeds: 3 }), /each method once/);
    assert.throws(() => abArgs('/c', { methods: ['lora', 'dora' as never], seeds: 3 }), /unknown method "dora"/);
    for (const seeds of [1, 2.5, MAX_AB_SEEDS + 1]) assert.throws(() => abArgs('/c', { methods: ['lora', 'moslora'], seeds }), /seeds: a whole number from 2 to 20/);
  });
});
