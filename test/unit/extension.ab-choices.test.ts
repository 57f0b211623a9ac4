// "MoSLoRA: A/B Test"'s choices (extension/ab-choices.ts): the methods offered, the seeds allowed,
// the request built from what was picked, and the progress line.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { abTestParams, methodChoices, progressMessage, seedsError } from '../../extension/ab-choices';
import { AB_METHODS } from '../../protocol/methods';

describe('methodChoices', () => {
  it('offers every A/B method, baseline lora first, with lora and moslora picked', () => {
    const choices = methodChoices();
    assert.deepEqual(choices.map((c) => c.method), [...AB_METHODS]);
    assert.equal(choices[0]!.method, 'lora');
    assert.deepEqual(choices.filter((c) => c.picked).map((c) => c.method), ['lora', 'moslora']);
  });
});

describe('seedsError', () => {
  it('accepts 2 to 20 and refuses the rest with the bounds', () => {
    for (const ok of ['2', '3', ' 20 ']) assert.equal(seedsError(ok), undefined, ok);
    for (const bad of ['1', '21', '0', '', 'three', '2.5', '-3']) assert.match(seedsError(bad) ?? '', /2 to 20/, bad);
  });
});

describe('abTestParams', () => {
  it('puts the methods in the list order, the baseline first, whatever order they were picked in', () => {
    assert.deepEqual(abTestParams('file:///w/c.moslora.yaml', ['dora', 'moslora', 'lora'], '4', '/w/runs', 'ab-1'), {
      configUri: 'file:///w/c.moslora.yaml', methods: ['lora', 'moslora', 'dora'], seeds: 4, runsDir: '/w/runs', progressId: 'ab-1',
    });
  });

  it('leaves runsDir out when the editor has none', () => {
    assert.equal('runsDir' in abTestParams('file:///c', ['lora', 'moslora'], '2', undefined, 'ab-2'), false);
  });

  it('refuses one method, an unknown method and a bad seed count', () => {
    assert.throws(() => abTestParams('file:///c', ['moslora'], '3', undefined, 'x'), /two or more methods.*moslora/);
    assert.throws(() => abTestParams('file:///c', ['lora', 'qlora'], '3', undefined, 'x'), /unknown A\/B method qlora/);
    assert.throws(() => abTestParams('file:///c', ['lora', 'moslora'], '1', undefined, 'x'), /2 to 20/);
  });
});

describe('progressMessage', () => {
  it('says the runs done and, while some remain, the step of the run that reported last', () => {
    assert.equal(progressMessage({ done: 1, total: 4, current: { method: 'moslora', seed: 2, step: 7, totalSteps: 30 } }), '1/4 runs done · moslora seed 2: step 7/30');
    assert.equal(progressMessage({ done: 0, total: 4 }), '0/4 runs done');
    assert.equal(progressMessage({ done: 4, total: 4, current: { method: 'lora', seed: 1, step: 30, totalSteps: 30 } }), '4/4 runs done');
  });
});
