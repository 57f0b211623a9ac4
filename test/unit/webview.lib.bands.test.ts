// The runs of an A/B in Compare (webview/lib/bands.ts): per method the mean over its seeds and the
// band from the lowest to the highest, at the steps every seed logged; which runs group together.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { abGroups, band } from '../../webview/lib/bands';

describe('an A/B method as a mean and a band', () => {
  it('averages the seeds at the steps they all have, and spans the lowest to the highest', () => {
    const b = band([
      { steps: [1, 2, 3, 4], values: [4, 3, 2, 1] },
      { steps: [1, 2, 3], values: [6, 5, NaN] },
      { steps: [0, 1, 2, 3], values: [9, 2, 1, 0] },
    ]);
    assert.deepEqual(b, { steps: [1, 2], mean: [4, 3], lo: [2, 1], hi: [6, 5] });
    assert.deepEqual(band([]), { steps: [], mean: [], lo: [], hi: [] });
    assert.deepEqual(band([{ steps: [5], values: [2] }]), { steps: [5], mean: [2], lo: [2], hi: [2] });
  });

  it('groups the seeds of one A/B by method; a lone seed and runs of no A/B stay single', () => {
    const run = (name: string, method: string, ab?: string) => ({ name, method, ab });
    const runs = [run('a', 'lora', 'ab-x'), run('b', 'moslora', 'ab-x'), run('c', 'lora', 'ab-x'), run('d', 'lora'), run('e', 'moslora', 'ab-y'), run('f', 'moslora', 'ab-x')];
    const { single, grouped } = abGroups(runs);
    assert.deepEqual(grouped.map((g) => [g.ab, g.method, g.runs.map((r) => r.name)]), [
      ['ab-x', 'lora', ['a', 'c']],
      ['ab-x', 'moslora', ['b', 'f']],
    ]);
    assert.deepEqual(single.map((r) => r.name), ['d', 'e']);
  });
});
