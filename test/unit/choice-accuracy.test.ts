import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataTokenizer } from '../../server/engine/data';
import type { Scorer } from '../../server/engine/parallel';
import { choiceAccuracy } from '../../server/engine/train';
import { IGNORE_INDEX } from '../../server/models/model';

// One token per character code; a choice scores the sum of its labelled tokens, so the choice
// with the largest character codes wins.
const tokenizer: DataTokenizer = {
  encode: (text) => [...text].map((c) => c.charCodeAt(0)),
  bosTokenId: 1,
  eosTokenId: 2,
  padTokenId: 0,
  applyChatTemplate: () => {
    throw new Error('no template');
  },
};

describe('multiple-choice accuracy', () => {
  it('scores whole examples a batch at a time and credits each its own best choice', async () => {
    const batches: number[] = [];
    const score: Scorer = async ({ labels }) => {
      batches.push(labels.length);
      return labels.map((row) => row.filter((l) => l !== IGNORE_INDEX).reduce((a, b) => a + b, 0));
    };
    const examples = [
      { prompt: 'q1', choices: ['a', 'z', 'b'], answer: 1 }, // right: z is largest
      { prompt: 'q2', choices: ['y', 'c'], answer: 1 }, // wrong: y beats c
      { prompt: 'q3', choices: ['d', 'e', 'x', 'f'], answer: 2 }, // right
      { prompt: 'q4', choices: ['g', 'w'], answer: 1 }, // right
    ];
    assert.equal(await choiceAccuracy(score, examples, tokenizer, 16, 5), 3 / 4);
    assert.deepEqual(batches, [5, 4, 2], 'whole examples, at most 5 rows a batch');
    batches.length = 0;
    assert.equal(await choiceAccuracy(score, examples, tokenizer, 16, 2), 3 / 4);
    assert.deepEqual(batches, [3, 2, 4, 2], 'an example larger than a batch is scored alone');
  });
});
