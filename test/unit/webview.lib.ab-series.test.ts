// Compare's A/B grouping (webview/lib/ab-series.ts): per A/B and method, the mean over seeds and
// the band from the lowest to the highest, from planted runs; plain runs and other A/Bs apart.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { abGroups, abNames, abSeries, spread } from '../../webview/lib/ab-series';
import { Ema } from '../../webview/lib/ema';
import { RunData, type Column } from '../../webview/lib/store';

function planted(runId: string, ab: RunData['ab'], losses: [number, number][], evals: [number, number][] = []): RunData {
  const run = new RunData(runId);
  run.ab = ab;
  run.addRecords(losses.map(([step, loss]) => ({ step, kind: 'train', loss, wall_s: step * 2 })));
  run.addRecords(evals.map(([step, eval_loss]) => ({ step, kind: 'eval', eval_loss, wall_s: step * 2 + 1 })));
  return run;
}

const ab = (method: string, seed: number, name = 'tiny') => ({ name, method, seed });

describe('abSeries', () => {
  const runs = [
    planted('l0', ab('lora', 0), [[1, 4], [2, 3], [3, 2]], [[3, 2.5]]),
    planted('l1', ab('lora', 1), [[1, 6], [2, 5], [3, 1]], [[3, 3.5]]),
    planted('l2', ab('lora', 2), [[1, 5], [2, 1], [3, 3]], [[3, 3]]),
    planted('m0', ab('moslora', 0), [[1, 1], [2, 2], [3, 1]]),
    planted('m1', ab('moslora', 1), [[1, 3], [2, 2]]),
    planted('plain', undefined, [[1, 9], [2, 9]]),
    planted('other', ab('lora', 0, 'second'), [[1, 7]]),
  ];

  it('gives each A/B and method the mean, lowest and highest over its seeds at each step (raw)', () => {
    const series = abSeries(runs, 'train/loss');
    assert.deepEqual(series.map((s) => [s.ab, s.method, s.runs.map((r) => r.runId)]), [
      ['tiny', 'lora', ['l0', 'l1', 'l2']],
      ['tiny', 'moslora', ['m0', 'm1']],
      ['second', 'lora', ['other']],
    ]);
    const lora = series[0]!;
    assert.deepEqual(lora.steps, [1, 2, 3]);
    assert.deepEqual(lora.mean, [5, 3, 2]);
    assert.deepEqual(lora.min, [4, 1, 1]);
    assert.deepEqual(lora.max, [6, 5, 3]);
    assert.deepEqual(lora.walls, [2, 4, 6]);
  });

  it('keeps only the steps every seed of the method has logged (a seed still training shortens the line)', () => {
    const moslora = abSeries(runs, 'train/loss')[1]!;
    assert.deepEqual(moslora.steps, [1, 2]);
    assert.deepEqual(moslora.mean, [2, 2]);
    assert.deepEqual(moslora.min, [1, 2]);
    assert.deepEqual(moslora.max, [3, 2]);
  });

  it('groups eval metrics as logged, and leaves out methods without the metric', () => {
    const series = abSeries(runs, 'eval/eval_loss');
    assert.deepEqual(series.map((s) => s.method), ['lora']);
    assert.deepEqual([series[0]!.mean, series[0]!.min, series[0]!.max], [[3], [2.5], [3.5]]);
  });

  it('averages the values the caller gives per run (smoothed ones)', () => {
    const smoothedValues = (column: Column) => {
      const ema = new Ema(0.5);
      for (const v of column.values) ema.push(v);
      return ema.values;
    };
    const smooth = abSeries(runs, 'train/loss', smoothedValues)[0]!;
    const each = ['l0', 'l1', 'l2'].map((id) => smoothedValues(runs.find((r) => r.runId === id)!.columns.get('train/loss')!));
    assert.deepEqual(smooth.mean, [0, 1, 2].map((i) => (each[0]![i]! + each[1]![i]! + each[2]![i]!) / 3));
    assert.deepEqual(smooth.min, [0, 1, 2].map((i) => Math.min(each[0]![i]!, each[1]![i]!, each[2]![i]!)));
  });
});

describe('abNames', () => {
  it('lists each A/B once with its first run, in the order of the runs', () => {
    const runs = [planted('p', undefined, []), planted('a', ab('lora', 0, 'x'), []), planted('b', ab('moslora', 0, 'x'), []), planted('c', ab('lora', 0, 'y'), [])];
    assert.deepEqual(abNames(runs), [{ name: 'x', runId: 'a' }, { name: 'y', runId: 'c' }]);
  });
});

describe('abGroups', () => {
  it("gathers each A/B and method's runs wherever they sit in the list, in the order of each group's first run", () => {
    const runs = [
      planted('m0', ab('moslora', 0), []),
      planted('p', undefined, []),
      planted('l0', ab('lora', 0), []),
      planted('m1', ab('moslora', 1), []),
      planted('x0', ab('moslora', 0, 'second'), []),
    ];
    assert.deepEqual(abGroups(runs).map((g) => [g.ab, g.method, g.runs.map((r) => r.runId)]), [
      ['tiny', 'moslora', ['m0', 'm1']],
      ['tiny', 'lora', ['l0']],
      ['second', 'moslora', ['x0']],
    ]);
  });
});

describe('spread', () => {
  it('gives the mean, lowest and highest of the finite numbers, and how many', () => {
    assert.deepEqual(spread([0.5, undefined, 0.7, null, Number.NaN, 0.6]), { mean: (0.5 + 0.7 + 0.6) / 3, min: 0.5, max: 0.7, n: 3 });
  });

  it('is undefined with no number to summarise', () => {
    assert.equal(spread([undefined, null, Number.POSITIVE_INFINITY]), undefined);
    assert.equal(spread([]), undefined);
  });
});
