// The panel's pure parts: smoothing, decimation, colour map, CSV, the run store, the settings that differ.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diverging, splitModule, symmetricLimit } from '../../webview/heatmap/colormap';
import { metricsCsv } from '../../webview/lib/csv';
import { lowerBound, m4 } from '../../webview/lib/decimate';
import { Ema, ema } from '../../webview/lib/ema';
import { differingKeys, valueText, type Configured } from '../../webview/lib/hyperparameters';
import { RunData, Store } from '../../webview/lib/store';
import type { RunState } from '../../protocol/webview';

describe('smoothing (TensorBoard debiased EMA)', () => {
  it('matches the formula, first value unchanged', () => {
    const xs = [3, 1, 4, 1, 5, 9, 2, 6];
    const w = 0.6;
    let last = 0;
    const expected = xs.map((x, i) => (last = w * last + (1 - w) * x) / (1 - w ** (i + 1)));
    assert.deepEqual(ema(xs, w), expected);
    assert.ok(Math.abs(ema(xs, w)[0]! - 3) < 1e-12, 'the first smoothed value is the first value');
    assert.deepEqual(ema(xs, 0), xs);
  });

  it('skips non-finite points (a gap), keeps a constant series constant, streams', () => {
    const out = ema([2, Number.NaN, 2, 2], 0.9);
    assert.ok(Number.isNaN(out[1]));
    for (const i of [0, 2, 3]) assert.ok(Math.abs(out[i]! - 2) < 1e-12);
    const e = new Ema(0.5);
    [1, 2, 3].forEach((x) => e.push(x));
    assert.deepEqual(e.values, ema([1, 2, 3], 0.5));
    assert.throws(() => new Ema(1), /\[0, 1\)/);
  });
});

describe('M4 decimation', () => {
  it('keeps every point when there are few, and each column\'s extremes when many', () => {
    const xs = Array.from({ length: 10_000 }, (_, i) => i);
    const ys = xs.map((i) => Math.sin(i / 50) + (i === 4321 ? 10 : 0) + (i === 777 ? -10 : 0));
    assert.deepEqual(m4(xs, [ys], 0, 20, 100), Array.from({ length: 20 }, (_, i) => i));
    const picked = m4(xs, [ys], 0, xs.length, 100);
    assert.ok(picked.length <= 4 * 100 && picked.length >= 200, `${picked.length}`);
    assert.ok(picked.includes(4321) && picked.includes(777), 'spikes kept');
    assert.equal(picked[0], 0);
    assert.equal(picked.at(-1), 9999);
    assert.deepEqual(picked, [...picked].sort((a, b) => a - b));
    const withGap = ys.map((y, i) => (i === 5000 ? Number.NaN : y));
    assert.ok(m4(xs, [withGap], 0, xs.length, 100).includes(5000), 'a gap stays visible');
    assert.equal(lowerBound(xs, 2500.5), 2501);
  });
});

describe('diverging colour map', () => {
  const blue = { r: 0, g: 0, b: 255 };
  const bg = { r: 30, g: 30, b: 30 };
  const red = { r: 255, g: 0, b: 0 };
  it('0 is neutral, ±limit the end colours, symmetric', () => {
    assert.deepEqual(diverging(0, 2, blue, bg, red), bg);
    assert.deepEqual(diverging(2, 2, blue, bg, red), red);
    assert.deepEqual(diverging(-2, 2, blue, bg, red), blue);
    assert.deepEqual(diverging(5, 2, blue, bg, red), red, 'clamped');
    assert.deepEqual(diverging(1, 2, blue, bg, red), { r: 143, g: 15, b: 15 });
    assert.equal(symmetricLimit([[0.5, -1.5], [null, 1]]), 1.5);
    assert.equal(symmetricLimit([[0, 0]]), 1);
  });
  it('splits checkpoint module names into layer and module', () => {
    assert.deepEqual(splitModule('model.layers.12.self_attn.q_proj'), { layer: '12', kind: 'self_attn.q_proj' });
    assert.deepEqual(splitModule('transformer.h.3.attn.c_attn'), { layer: '3', kind: 'attn.c_attn' });
    assert.deepEqual(splitModule('lm_head'), { layer: '', kind: 'lm_head' });
  });
});

describe('metrics CSV', () => {
  it('one row per record, one column per metric, quoted, formulas defused', () => {
    const csv = metricsCsv([
      { name: '=cmd|calc', records: [{ step: 1, kind: 'train', loss: 2.5, wall_s: 0.4 }, { step: 1, kind: 'eval', eval_loss: 2.4, note: 'a, "b"' }] },
    ]);
    assert.equal(csv, 'run,step,kind,wall_s,eval_loss,loss,note\r\n\'=cmd|calc,1,train,0.4,,2.5,\r\n\'=cmd|calc,1,eval,,2.4,,"a, ""b"""\r\n');
  });
});

describe('run store', () => {
  it('a resumed run replaces the steps it logs again', () => {
    const run = new RunData('r');
    run.addRecords([1, 2, 3, 4].map((step) => ({ step, kind: 'train', loss: 10 - step })));
    run.addRecords([{ step: 4, kind: 'eval', eval_loss: 5 }]);
    run.addRecords([3, 4, 5].map((step) => ({ step, kind: 'train', loss: 20 - step })));
    assert.deepEqual(run.column('train', 'loss')!.steps, [1, 2, 3, 4, 5]);
    assert.deepEqual(run.column('train', 'loss')!.values, [9, 8, 17, 16, 15]);
    assert.deepEqual(run.records.map((r) => `${r.kind}${r.step}`), ['train1', 'train2', 'eval4', 'train3', 'train4', 'train5']);
    assert.equal(run.best('train', 'loss', true), 8);
  });
  it('the epoch is progress, not a curve: no column, the newest one on request', () => {
    const run = new RunData('r');
    assert.equal(run.epoch(), undefined);
    run.addRecords([{ step: 1, kind: 'train', loss: 3, epoch: 0 }, { step: 2, kind: 'eval', eval_loss: 2 }, { step: 3, kind: 'train', loss: 2, epoch: 1 }]);
    assert.equal(run.column('train', 'epoch'), undefined);
    assert.deepEqual([...run.columns.keys()], ['train/loss', 'eval/eval_loss']);
    assert.equal(run.epoch(), 1);
  });
  it('null (a NaN on the wire) is a gap, not a zero', () => {
    const run = new RunData('r');
    run.addRecords([{ step: 1, kind: 'train', loss: null }]);
    assert.ok(Number.isNaN(run.column('train', 'loss')!.values[0]));
    assert.equal(run.last('train', 'loss'), undefined);
  });
});

describe('the runs the panel shows', () => {
  const state = (runId: string, phase: RunState['phase'] = 'training'): RunState => ({ runId, name: runId, phase, step: 1, total: 2, backend: 'wasm', device: 'CPU', startedAt: null });

  it('keeps the run picked while another reports its state; shows the newest when none is picked', () => {
    const store = new Store();
    store.setListing([{ runId: 'new', name: 'new' }, { runId: 'old', name: 'old' }]);
    assert.equal(store.currentRunId, 'new', 'nothing picked: the newest listed');
    store.currentRunId = 'old';
    store.setState(state('live'));
    assert.equal(store.currentRunId, 'old', "a live run's state does not take the picker away");
    assert.deepEqual(store.newestFirst().map((r) => r.runId), ['live', 'new', 'old'], 'a live run the list does not have yet comes first');
    assert.deepEqual(store.comparable().map((r) => r.runId), ['new', 'old', 'live']);
    const empty = new Store();
    empty.setState(state('first'));
    assert.equal(empty.currentRunId, 'first');
  });

  it('asks for a run once per page, and not for one the extension sent whole', () => {
    const store = new Store();
    assert.equal(store.needs('a'), true);
    assert.equal(store.needs('a'), false);
    store.addRecords('b', [{ step: 1, kind: 'train', loss: 1 }]);
    assert.equal(store.needs('b'), true, 'live records alone are not the whole run');
    store.addRecords('c', [{ step: 1, kind: 'train', loss: 1 }], true);
    assert.equal(store.needs('c'), false);
    store.setListing([{ runId: 'd', name: 'd', metrics: [] }]);
    assert.equal(store.needs('d'), false);
  });

  it('forgets a removed run, and shows the newest listed instead', () => {
    const store = new Store();
    store.setListing([{ runId: 'a', name: 'a', finalLoss: 2.5, resumable: true }, { runId: 'b', name: 'b' }]);
    assert.deepEqual([store.run('a').lastLoss(), store.run('a').resumable, store.run('b').resumable], [2.5, true, false]);
    store.currentRunId = 'b';
    store.remove('b');
    assert.deepEqual([store.currentRunId, store.listed, store.runs.has('b')], ['a', ['a'], false]);
    assert.equal(store.needs('b'), true, 'a run that comes back is asked for again');
  });

  it('the last logged loss is raw: the records first, then the summary', () => {
    const run = new RunData('r');
    run.finalLoss = 2.5;
    assert.equal(run.lastLoss(), 2.5);
    run.addRecords([{ step: 1, kind: 'train', loss: 3 }, { step: 2, kind: 'train', loss: 2.632 }]);
    assert.equal(run.lastLoss(), 2.632);
  });
});

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
